"""Training the See3D multi-view diffusion on pose-free clips (``see3d train``); see ``docs/training.md``.

``train(TrainConfig(...))`` runs (or resumes) a training; ``small_train_config`` is the CPU reproduction preset.
"""

from see3d.train.config import TrainConfig
from see3d.train.small_model import small_train_config
from see3d.train.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "small_train_config", "train"]

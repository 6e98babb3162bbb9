"""Writing a trained model: the UNet folder (EMA weights), the pixel VAE, the scheduler and a complete pipeline."""

from __future__ import annotations

import shutil
from pathlib import Path

from see3d.io.atomic import write_text_atomic
from see3d.io.outdir import replace_dir
from see3d.log import get_logger
from see3d.train.build import inference_scheduler
from see3d.train.checkpoint import ema_weights, save_model_folder
from see3d.train.config import TrainConfig

log = get_logger(__name__)


def export_model(raw_unet, ema, out: Path, vae=None, noise_scheduler=None, cfg: TrainConfig | None = None, context=None) -> Path:
    """Write ``out/unet`` (EMA weights when EMA is on; ``out/unet_nonema`` then holds the raw ones), and
    for the pixel-unshuffle space ``out/vae``; also ``out/scheduler``. With ``cfg.export_pipeline`` and text +
    image encoders, also ``out/pipeline``: a complete :class:`See3DPipeline` folder (``from_pretrained``).
    Returns ``out/unet``."""
    out = Path(out)
    if ema is not None:
        save_model_folder(raw_unet, out / "unet_nonema")
    with ema_weights(raw_unet, ema):
        unet_dir = save_model_folder(raw_unet, out / "unet")
        if cfg is not None and cfg.export_pipeline:
            if context is None or context.image_model is None or noise_scheduler is None or vae is None:
                log.warning("export_pipeline needs the text and image encoders (context 'encoders' with an image encoder); skipped")
            else:
                from see3d.pipelines.see3d_pipeline import See3DPipeline

                pipe = See3DPipeline(
                    vae=vae, text_encoder=context.text_encoder, tokenizer=context.tokenizer, unet=raw_unet,
                    scheduler=inference_scheduler(noise_scheduler, cfg), feature_extractor=context.processor, image_encoder=context.image_model,
                )  # fmt: skip
                tmp = out / ".tmp-pipeline"
                shutil.rmtree(tmp, ignore_errors=True)
                pipe.save_pretrained(str(tmp), safe_serialization=True)
                replace_dir(tmp, out / "pipeline")
    if vae is not None and cfg is not None and cfg.latent_space == "pixel_unshuffle":
        save_model_folder(vae, out / "vae")
    if noise_scheduler is not None:
        write_text_atomic(out / "scheduler" / "scheduler_config.json", noise_scheduler.to_json_string())
    return unet_dir

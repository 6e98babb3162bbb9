"""Evaluation: protocols, scoring and the report behind ``see3d eval``.

- :mod:`see3d.eval.protocols`: ``run_sparse`` / ``run_dense`` / ``run_single`` over injectable components.
- :mod:`see3d.eval.components`: the real components (3DGS reconstruction, See3D generation).
- :mod:`see3d.eval.evaluate_small`: the held-out evaluation of the small-scale reproduction (synthetic scenes).
- :mod:`see3d.eval.runner`: ``evaluate(EvalConfig)``; :mod:`see3d.eval.report`: results.json / results.md / strips.

The metrics (``psnr``, ``ssim``, masked variants) live in :mod:`see3d.metrics`, LPIPS in :mod:`see3d.perceptual`, and the dataset readers
(LLFF, DTU, COLMAP, transforms.json -> ``Scene``, with the published splits) in :mod:`see3d.datasets`, below
``splat`` and ``train``, which use them too. Submodules are imported on demand (this package itself imports nothing heavy).
"""

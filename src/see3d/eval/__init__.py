"""Evaluation: metrics, dataset readers, splits, protocols and the report behind ``see3d eval``.

- :mod:`see3d.eval.metrics`: ``psnr``, ``ssim`` (differentiable; also the 3DGS D-SSIM loss), masked variants.
- :mod:`see3d.eval.perceptual`: LPIPS from locally given weights (``load_lpips``).
- :mod:`see3d.eval.datasets`: LLFF, DTU (IDR ``cameras.npz``), COLMAP and transforms.json readers -> ``Scene``.
- :mod:`see3d.eval.splits`: the published train/test view splits.
- :mod:`see3d.eval.protocols`: ``run_sparse`` / ``run_dense`` / ``run_single`` over injectable components.
- :mod:`see3d.eval.components`: the real components (3DGS reconstruction, See3D generation).
- :mod:`see3d.eval.runner`: ``evaluate(EvalConfig)``; :mod:`see3d.eval.report`: results.json / results.md / strips.

Submodules are imported on demand (this package itself imports nothing heavy).
"""

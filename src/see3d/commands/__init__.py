"""One module per ``see3d`` verb (see :mod:`see3d.cli`)."""

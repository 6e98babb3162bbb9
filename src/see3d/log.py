"""Logging and progress bars, one style for every command."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

LOGGER_NAME = "see3d"


def get_logger(name: str | None = None) -> logging.Logger:
    """The package logger, or a child of it (``get_logger(__name__)``)."""
    if name is None or name == LOGGER_NAME:
        return logging.getLogger(LOGGER_NAME)
    if name.startswith(LOGGER_NAME + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted (not the stream of set-up time,
    which may have been replaced and closed since, e.g. by a test's output capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(verbosity: int = 0) -> None:
    """Log to stderr: warnings by default, info with -v, debug with -vv."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger(LOGGER_NAME)
    root.handlers[:] = [handler]
    root.setLevel(level)


def crash_log_dir() -> Path:
    """Folder of the logs of unexpected errors: ``$SEE3D_LOG_DIR``, else ``~/.cache/see3d/logs``."""
    env = os.environ.get("SEE3D_LOG_DIR")
    return Path(env) if env else Path.home() / ".cache" / "see3d" / "logs"


def write_crash_log(command: str, argv: list[str], text: str) -> Path | None:
    """Write the traceback ``text`` of a failed ``see3d <command>`` to a new file in :func:`crash_log_dir`;
    returns its path (``None`` when the folder is not writable)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        folder = crash_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"see3d-{command}-{stamp}-{os.getpid()}.log"
        path.write_text(f"see3d {' '.join(argv)}\n\n{text}")
        return path
    except OSError:
        return None


def progress(iterable=None, desc: str = "", total: int | None = None, unit: str = "it", disable: bool | None = None, **kw):
    """A tqdm progress bar on stderr; hidden automatically when stderr is not a terminal and
    ``SEE3D_PROGRESS`` is unset (keeps CI logs readable)."""
    if disable is None:
        disable = not (sys.stderr.isatty() or os.environ.get("SEE3D_PROGRESS"))
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, dynamic_ncols=True, **kw)

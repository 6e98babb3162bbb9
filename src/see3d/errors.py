"""Errors raised for bad user input.

Every error about a user's file names the file and says what is wrong with it, so batch jobs can
record the message and go on.
"""

from __future__ import annotations

from pathlib import Path


class See3DError(Exception):
    """Base class of all errors this package raises on purpose."""


class InputError(See3DError, ValueError):
    """A user-given file or value is missing, unreadable or malformed.

    Args:
        path: the offending file or folder (``None`` when the problem is a plain value).
        problem: what is wrong, in words a user understands.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class WeightsError(InputError):
    """Model weights are missing, of the wrong format, or do not match the model."""


class OptionError(InputError):
    """A setting (config field / CLI option) outside its valid range.

    Args:
        name: the config field, e.g. ``n_frames`` (the CLI shows it as ``--n-frames``).
        problem: what is wrong, e.g. ``"must be >= 1 (got 0)"``.
    """

    def __init__(self, name: str, problem: str):
        self.name = name
        super().__init__(None, f"{name} {problem}")
        self.problem = problem

    def as_option(self, prefix: str = "") -> OptionError:
        """The same error naming the command-line option (``--prefix-name``)."""
        return OptionError("--" + (prefix + self.name.lstrip("-")).replace("_", "-"), self.problem)

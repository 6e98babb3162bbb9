"""Output folders that describe exactly one run.

A verb that writes a folder of results checks it first with :func:`check_out_dir` (an existing file is
refused; a non-empty folder is refused unless the user asked to overwrite it) and then writes through
:func:`staged_dir`: everything goes into a fresh hidden folder beside the target, which replaces the
target only when the run succeeded. A killed or failed run leaves the old folder (or none) untouched,
and a rerun never mixes its files with an earlier run's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from see3d.errors import InputError
from see3d.io.atomic import normal_permissions


def check_out_dir(out: str | Path, overwrite: bool = False, inputs: tuple[str | Path, ...] = ()) -> Path:
    """Refuse an output folder that cannot hold exactly one new run.

    Args:
        out: the output folder.
        overwrite: allow a non-empty ``out`` (the run replaces it).
        inputs: folders the run reads; ``out`` must be none of them, nor lie inside one, nor contain one.

    Raises:
        InputError: ``out`` is a file, is (or overlaps) an input, or is a non-empty folder and ``overwrite`` is off.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "is an existing file; --out must be a folder")
    target = out.resolve()
    for src in inputs:
        s = Path(src).resolve()
        if target == s or s in target.parents or target in s.parents:
            raise InputError(out, f"overlaps the input {src}; write the result to another folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(out, "is not empty (it holds an earlier run); choose a new folder or pass --overwrite to replace it")
    return out


@contextlib.contextmanager
def staged_dir(out: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``out``; on success it replaces ``out`` (the old content is removed),
    on error it is deleted and ``out`` stays as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out)


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the complete folder ``tmp`` onto ``final`` (an old ``final`` is moved aside, then removed), with the
    usual permissions (mkdtemp makes 0700 folders, safetensors writes 0600 files; results are 0644)."""
    normal_permissions(tmp)
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

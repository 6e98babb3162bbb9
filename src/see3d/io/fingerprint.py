"""Content identity of an input file, cheap enough to check on every run.

``size + mtime + SHA-1 of the first and last MiB``: a file replaced by another one at the same path (or
touched, truncated, appended to) gets a new identity, without reading whole videos.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_EDGE = 1 << 20  # bytes hashed at each end


def file_identity(path: str | Path) -> str | None:
    """``"<size>-<mtime_ns>-<sha1 of head and tail>"`` of a file, or ``None`` when it is missing or unreadable."""
    try:
        st = os.stat(path)
        h = hashlib.sha1()
        with open(path, "rb") as f:
            h.update(f.read(_EDGE))
            if st.st_size > _EDGE:
                f.seek(max(_EDGE, st.st_size - _EDGE))
                h.update(f.read(_EDGE))
    except OSError:
        return None
    return f"{st.st_size}-{st.st_mtime_ns}-{h.hexdigest()[:16]}"

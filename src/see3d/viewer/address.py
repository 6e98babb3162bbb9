"""Where the web pages of ``see3d view`` and ``see3d app`` listen: one check for both.

The pages have no authentication, so they bind 127.0.0.1 (this machine only) by default; any other
address is allowed but warned about.
"""

from __future__ import annotations

import socket

from see3d.errors import InputError
from see3d.log import get_logger

log = get_logger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_listen_address(host: str, port: int) -> None:
    """Raise :class:`InputError` unless ``port`` is a valid TCP port (0 = any free one) and ``host`` is an
    address of this machine (binding elsewhere fails, and viser would retry forever); warn (log) when
    ``host`` is reachable from other machines."""
    if not 0 <= int(port) <= 65535:
        raise InputError(None, f"--port must be in 0..65535 (got {port})")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise InputError(None, f"--host {host!r} is not a known address ({e})") from e
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((addr[0], 0))
        except OSError as e:
            raise InputError(None, f"--host {host}: cannot listen there, it is not an address of this machine ({e.strerror})") from e
    if host not in LOOPBACK:
        log.warning("listening on %s: other machines can reach it (no authentication)", host)


def page_url(host: str, port: int) -> str:
    """The URL to open for a server bound to ``host:port`` (a wildcard address is opened as loopback)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"

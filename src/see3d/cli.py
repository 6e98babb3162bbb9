"""The ``see3d`` command line: one verb per capability, each a thin wrapper over the Python API.

Each verb lives in its own module under :mod:`see3d.commands` and defines::

    NAME = "verb"
    HELP = "one line"
    def add_arguments(parser): ...
    def run(args) -> int: ...

Verbs are discovered from that package, so adding a capability never edits this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback

from see3d import __version__
from see3d.errors import See3DError
from see3d.log import get_logger, setup_logging, write_crash_log


def _commands():
    import see3d.commands as pkg

    mods = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"see3d.commands.{info.name}"))
    return mods


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``selected``, only that verb's options are built (its module may import
    heavy libraries to describe its config, so the other verbs stay cheap)."""
    parser = argparse.ArgumentParser(
        prog="see3d",
        description="See3D: learn 3D from pose-free video; turn images or text into 3D scenes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"see3d {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for mod in _commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
        if selected is None or selected == mod.NAME:
            mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    selected = next((a for a in argv if not a.startswith("-")), "")  # "": no verb, build no verb options
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose)
    try:
        return int(args._run(args) or 0)
    except See3DError as e:
        get_logger().debug("error", exc_info=True)
        print(f"see3d {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"see3d {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # last resort: one line, the traceback goes to a log file (and to stderr with -v)
        return _report_unexpected(args.command, argv, e, args.verbose)


def _report_unexpected(command: str, argv: list[str], exc: Exception, verbose: int) -> int:
    """Write the traceback of an unexpected error to a log file and print one line naming it."""
    text = "".join(traceback.format_exception(exc))
    log_path = write_crash_log(command, argv, text)
    if verbose:
        print(text, file=sys.stderr, end="")
    where = f"full log: {log_path}" if log_path else "the log could not be written"
    hint = "" if verbose else "; -v prints the traceback"
    print(f"see3d {command}: internal error: {type(exc).__name__}: {exc} ({where}{hint})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""The one CLI: every verb's ``--help`` renders (its options come from dataclass configs)."""

from __future__ import annotations

import pytest

from see3d.cli import _commands, main


@pytest.mark.parametrize("verb", [m.NAME for m in _commands()])
def test_every_verb_help_renders(verb, capsys):
    """argparse %-formats help strings: a literal '%' in a config field's help (e.g. "~30% slower") must not break
    ``see3d <verb> --help``."""
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: see3d {verb}")


def test_percent_signs_in_config_help_are_printed_verbatim(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "~30% slower" in out and "last 10% of the schedule" in out

"""Helpers shared by the CLI tests: call ``lensllm.cli.main`` and check one-line errors."""

from __future__ import annotations

from lensllm.cli import main


def run_cli(capsys, argv):
    """``main(argv)``'s status (argparse usage errors exit through SystemExit), stdout, stderr."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, out, err, words):
    """Exit status 2, nothing on stdout, one stderr line containing every word, no traceback."""
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])

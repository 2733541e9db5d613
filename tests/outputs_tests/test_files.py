"""Atomic, exclusive writes; symlinks, FIFOs, devices and file-for-folder paths refused."""

from __future__ import annotations

import errno
import os

import pytest

from lensllm.exceptions import OutputError
from lensllm.outputs import check_output_dir, check_output_file, make_dir, write_text
from lensllm.outputs import files as files_mod


def test_writes_atomically_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "sub" / "a.csv"
    write_text(out, "x,y\n")
    assert out.read_text() == "x,y\n"
    write_text(out, "z\n")
    assert out.read_text() == "z\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.csv"]


def test_a_symlink_at_the_output_is_refused_and_its_target_kept(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "out.csv"
    link.symlink_to(target)
    with pytest.raises(OutputError, match="symbolic link"):
        write_text(link, "new")
    assert target.read_text() == "keep me" and link.is_symlink()


def test_a_planted_symlink_at_the_old_temporary_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out.csv.tmp").symlink_to(victim)
    write_text(tmp_path / "out.csv", "table\n")
    assert victim.read_text() == "keep me"
    assert (tmp_path / "out.csv").read_text() == "table\n"


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="special file"):
        write_text(fifo, "x")
    assert fifo.exists() and not fifo.is_file()


def test_a_device_is_refused():
    with pytest.raises(OutputError, match="special file"):
        check_output_file("/dev/null", "--out")


def test_dash_is_standard_output_only_when_allowed(capsys):
    with pytest.raises(OutputError, match="standard output"):
        check_output_file("-", "--out")
    check_output_file("-", "--out", allow_stdout=True)
    write_text("-", "to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"


def test_a_file_where_a_folder_is_needed(tmp_path):
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(OutputError, match="not a folder"):
            check_output_dir(bad, "--out")
    with pytest.raises(OutputError, match="not a folder"):
        check_output_file(tmp_path / "file" / "x.json", "--out")
    assert (tmp_path / "file").read_text() == "x"
    assert make_dir(tmp_path / "new" / "deep").is_dir()


def test_a_full_disk_is_one_error_and_the_old_file_stays(tmp_path, monkeypatch):
    out = tmp_path / "a.txt"
    out.write_text("old")

    def full(fd, *_args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files_mod.os, "fsync", full)
    with pytest.raises(OutputError, match="disk full"):
        write_text(out, "new")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_an_unwritable_folder_is_refused_up_front(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_output_file(locked / "x.csv", "--out")
    finally:
        locked.chmod(0o700)

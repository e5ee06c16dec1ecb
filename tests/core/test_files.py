"""tools.core.files: whole files or nothing, and never a device replaced by a file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tools.core.files import atomic_write_text, atomic_writer


def test_a_file_is_replaced_whole_and_a_failed_write_leaves_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.json"
    atomic_write_text(target, "first")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]  # no temporary file left behind


def test_a_device_or_fifo_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    """`--output /dev/null` once renamed a temporary file over /dev/null, leaving a regular file there."""
    atomic_write_text(os.devnull, "discarded")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        atomic_write_text(fifo, "through the pipe")
        assert os.read(reader, 100) == b"through the pipe"
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    finally:
        os.close(reader)


def test_a_symbolic_link_stays_and_its_target_is_replaced(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"

"""``--output`` onto what is not a plain new file: FIFOs, devices, symlinks, kept modes, a full
disk. Real files and real FIFOs; the command run as a user would."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from pathlib import Path
from typing import IO

import pytest
import typer

from tests.e2e import TRIALWATCH, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from trialwatch.cli._output import write_output


def _text(text: str) -> object:
    def write(out: IO[str]) -> None:
        out.write(text)

    return write


class _FifoReader:
    """Reads a FIFO to its end on a thread, as the program at the other end of a pipe would."""

    def __init__(self, path: Path) -> None:
        self.data = b""
        self._thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self._thread.start()

    def _read(self, path: Path) -> None:
        with path.open("rb") as fh:
            self.data = fh.read()

    def join(self) -> bytes:
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()
        return self.data


def test_a_fifo_is_written_through_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = _FifoReader(fifo)
    write_output(fifo, _text("héllo\n"))  # type: ignore[arg-type]
    assert reader.join() == "héllo\n".encode()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temp file left behind


def test_a_dash_is_stdout_not_a_file_named_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`--output -` wrote a file named '-' where the command line's convention (as `watch
    import -` reads stdin) is stdout."""
    monkeypatch.chdir(tmp_path)
    write_output(Path("-"), _text("to stdout\n"))  # type: ignore[arg-type]
    assert capfd.readouterr().out == "to stdout\n"
    assert list(tmp_path.iterdir()) == []


def test_a_0600_file_stays_0600_and_a_new_file_follows_the_umask(tmp_path: Path) -> None:
    secret = tmp_path / "private.csv"
    secret.write_text("old\n")
    secret.chmod(0o600)
    write_output(secret, _text("new\n"))  # type: ignore[arg-type]
    assert secret.read_text() == "new\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600

    old = os.umask(0o027)
    try:
        fresh = tmp_path / "fresh.csv"
        write_output(fresh, _text("x"))  # type: ignore[arg-type]
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # as open() would have made it


def test_a_symlink_stays_a_link_and_its_target_gets_the_text(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_output(link, _text("new"))  # type: ignore[arg-type]
    assert link.is_symlink()
    assert real.read_text() == "new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


@pytest.fixture
def full_device(tmp_path: Path) -> Path:
    """A device that answers every write with ENOSPC. As root, a private node made with mknod:
    code that renames onto its target (the bug) would otherwise replace the machine's own
    /dev/full with a file. Without root, /dev/full itself, which such code cannot replace."""
    if os.geteuid() == 0:
        node = tmp_path / "full"
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        return node
    if not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("needs /dev/full")
    return Path("/dev/full")


def test_a_full_device_is_a_plain_failure_and_is_not_replaced(
    full_device: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = os.stat(full_device)
    with pytest.raises(typer.Exit) as exited:
        write_output(full_device, _text("x" * 100_000))  # type: ignore[arg-type]
    assert exited.value.exit_code == 1
    err = capsys.readouterr().err
    assert f"cannot write {full_device}: No space left on device" in err
    after = os.stat(full_device)
    assert stat.S_ISCHR(after.st_mode)
    assert after.st_ino == before.st_ino


def test_a_directory_is_refused_plainly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exited:
        write_output(tmp_path, _text("x"))  # type: ignore[arg-type]
    assert exited.value.exit_code == 1
    assert f"cannot write {tmp_path}: it is a directory" in capsys.readouterr().err


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("kept")

    def boom(out: IO[str]) -> None:
        out.write("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(typer.Exit):
        write_output(target, boom)
    assert target.read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


@pytest.mark.e2e
def test_export_output_onto_a_fifo_a_0600_file_and_a_full_device(
    api: FakeCtGov, tmp_path: Path, full_device: Path
) -> None:
    db = tmp_path / "data" / "trialwatch.db"
    env = user_env(api.base_url, db)
    assert trialwatch("sync", env=env, cwd=tmp_path).code == 0

    fifo = tmp_path / "trials.pipe"
    os.mkfifo(fifo)
    reader = _FifoReader(fifo)
    run = trialwatch("export", "--format", "json", "--output", str(fifo), env=env, cwd=tmp_path)
    assert run.code == 0, run.err
    assert len(json.loads(reader.join())["trials"]) == 13
    assert stat.S_ISFIFO(fifo.lstat().st_mode)

    private = tmp_path / "trials.csv"
    private.write_text("")
    private.chmod(0o600)
    run = trialwatch("export", "--format", "csv", "--output", str(private), env=env, cwd=tmp_path)
    assert run.code == 0, run.err
    assert "NCT02606461" in private.read_text()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600

    run = trialwatch("timeline", "--output", str(full_device), env=env, cwd=tmp_path)
    assert (run.code, run.err) == (
        1,
        f"trialwatch: cannot write {full_device}: No space left on device\n",
    )
    assert stat.S_ISCHR(full_device.stat().st_mode)

    with full_device.open("w") as stdout:  # `trialwatch export > /dev/full`
        code = subprocess.run(
            [str(TRIALWATCH), "export"],
            env=env,
            cwd=tmp_path,
            stdout=stdout,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert (code.returncode, code.stderr) == (
        1,
        b"trialwatch: cannot write to standard output: No space left on device\n",
    )

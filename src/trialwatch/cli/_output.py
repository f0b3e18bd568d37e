"""Where ``--output`` (export, report, timeline) and stdout writes go: one function for all.

A regular file is replaced in one step: the text goes to a temporary file made with
``mkstemp`` beside it (unpredictable name, created exclusively), is flushed to disk, takes the
old file's mode, and is renamed over it, so a reader never sees half a file and a failed write
leaves the old one as it was.

What is not a regular file is written in place, never replaced: a FIFO (a pipe to another
program), a character device (``/dev/stdout``, ``/dev/null``, ``/dev/full``). Renaming a regular
file over them would break the reader waiting on the pipe, or, as root, swap a device node for
a file. A symlink is followed: its target is what gets written (in place or replaced as above),
and the link stays a link, as an editor saving through a link does. A directory, a socket or
anything else that cannot take text is refused in one plain line.

Every failure (no such directory, permission, a full disk — ``ENOSPC`` on ``/dev/full``)
ends the command with one plain line and exit 1; nothing reports success that did not write.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from trialwatch.cli._common import EXIT_FAILURE, fail


class _Refused(Exception):
    pass


def write_output(
    output: Path | None, write: Callable[[IO[str]], object], *, newline: str | None = None
) -> None:
    """Call ``write`` with a UTF-8 text stream (whatever the locale says) bound for stdout or
    ``output`` (see the module's docstring for what happens to each kind of path); exit 1 with
    one plain line if the text cannot be written in full. ``-`` is stdout, as the command line's
    convention has it (``watch import -`` reads stdin): not a file named ``-``."""
    if output is None or str(output) == "-":
        _write_stdout(write, newline)
        return
    try:
        _write_path(output, write, newline)
    except _Refused as exc:
        fail(f"cannot write {output}: {exc}", EXIT_FAILURE)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_FAILURE)


def _write_stdout(write: Callable[[IO[str]], object], newline: str | None) -> None:
    try:
        sys.stdout.flush()
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline=newline)
        try:
            write(stream)
            stream.flush()
        finally:
            stream.detach()  # stdout stays open for whatever is printed after
    except BrokenPipeError:
        # The reader went away (`| head`): what it wanted it has; say nothing more, and keep
        # Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(EXIT_FAILURE) from None
    except OSError as exc:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        fail(f"cannot write to standard output: {exc.strerror or exc}", EXIT_FAILURE)


def _write_path(output: Path, write: Callable[[IO[str]], object], newline: str | None) -> None:
    target = Path(os.path.realpath(output))  # through every symlink, to what gets written
    try:
        found = target.stat()
    except FileNotFoundError:
        found = None
    if found is not None and not stat.S_ISREG(found.st_mode):
        if not (stat.S_ISFIFO(found.st_mode) or stat.S_ISCHR(found.st_mode)):
            kind = "a directory" if stat.S_ISDIR(found.st_mode) else "not a file, pipe or device"
            raise _Refused(f"it is {kind}")
        # In place: no O_TRUNC games (a pipe or device has nothing to truncate), no rename.
        with open(target, "w", encoding="utf-8", newline=newline) as fh:
            write(fh)
        return
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with open(fd, "w", encoding="utf-8", newline=newline) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
            # mkstemp made it 0600: give it the replaced file's mode, or a new file's.
            os.fchmod(fh.fileno(), _mode_for(found))
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _mode_for(found: os.stat_result | None) -> int:
    if found is not None:
        return stat.S_IMODE(found.st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask

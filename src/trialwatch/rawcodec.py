"""How a record is kept as it was served: compressed bytes in ``record_version.raw_record``.

It is read back rarely (a newer normalizer re-reads every stored record once, silently) and
written for every new or changed record of a sync, so writing is what
must be cheap. zstd at level 1 compresses a ~10 KB record in ~40 µs to ~39 % of its size; zlib
at level 1, which 0.1 used, took ~130 µs for ~40 %, a fifth of a first sync's time. Versions
written by 0.1 stay zlib and are told apart by their first bytes: a zstd frame starts with its
magic number, a zlib stream with 0x78.
"""

from __future__ import annotations

import threading
import zlib
from typing import Final

import zstandard

from trialwatch.exceptions import RecordError

__all__ = ["compress", "decompress"]

_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_LEVEL: Final = 1

# A compressor is not safe to share between threads; a sync runs in one, the daemon's in another.
_local = threading.local()


def compress(body: bytes) -> bytes:
    """``body`` compressed (a zstd frame that records its size)."""
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=_LEVEL)
    # zstandard hands back a bytes object as large as the worst case (about the input's size)
    # cut short, not shrunk: a page's compressed records would hold ~10 KB each, not ~4.
    return bytes(memoryview(compressor.compress(body)))


def decompress(blob: bytes) -> bytes:
    """The bytes :func:`compress` was given, or those of a zlib stream written by 0.1;
    :class:`RecordError` when ``blob`` is neither (a damaged row)."""
    try:
        if blob[:4] == _ZSTD_MAGIC:
            decompressor = getattr(_local, "decompressor", None)
            if decompressor is None:
                decompressor = _local.decompressor = zstandard.ZstdDecompressor()
            return decompressor.decompress(blob)
        return zlib.decompress(blob)
    except (zstandard.ZstdError, zlib.error) as exc:
        raise RecordError(f"a stored record cannot be decompressed ({exc})") from exc

"""The record as served is kept compressed: zstd now, zlib as 0.1 wrote it, both read back."""

from __future__ import annotations

import json
import threading
import zlib

import pytest

from tests.fakes.ctgov_server import load_records
from trialwatch import rawcodec
from trialwatch.exceptions import RecordError


def test_a_record_comes_back_byte_for_byte_smaller_than_a_half() -> None:
    for record in load_records():
        body = json.dumps(record, separators=(",", ":")).encode()
        blob = rawcodec.compress(body)
        assert blob[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
        assert len(blob) < len(body) / 2
        assert rawcodec.decompress(blob) == body


def test_what_010_wrote_with_zlib_still_reads() -> None:
    body = json.dumps(load_records()[0]).encode()
    assert rawcodec.decompress(zlib.compress(body, 1)) == body
    assert rawcodec.decompress(zlib.compress(body, 9)) == body


def test_threads_do_not_share_a_compressor() -> None:
    bodies = [json.dumps(r).encode() for r in load_records()] * 20
    results: list[bool] = []

    def work() -> None:
        results.append(all(rawcodec.decompress(rawcodec.compress(b)) == b for b in bodies))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4


def test_a_damaged_blob_is_a_record_error_not_a_codec_traceback() -> None:
    for blob in (b"\x28\xb5\x2f\xfd garbage", b"\x78\x9c garbage", b""):
        with pytest.raises(RecordError, match="cannot be decompressed"):
            rawcodec.decompress(blob)

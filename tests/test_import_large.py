"""``watch import`` of a text far larger than a review, and of files that are not text: memory
stays flat in the text's size; a binary file is refused plainly."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import SHIPPED_CONFIG, TRIALWATCH
from trialwatch import importtext
from trialwatch.importtext import (
    ImportedTrial,
    ImportResult,
    Skipped,
    read_import,
    read_import_pieces,
)

DATA = Path(__file__).parent / "data" / "import"
TEXTS = sorted(p.name for p in DATA.iterdir() if p.name != "README.md")


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("name", TEXTS)
@pytest.mark.parametrize("chunk", [1 << 20, 4096])
def test_reading_in_chunks_gives_what_one_reading_gives(name: str, chunk: int) -> None:
    text = (DATA / name).read_text(encoding="utf-8")
    # Pieces of a size unrelated to the chunk's, as a decoder hands them over.
    assert read_import_pieces(_pieces(text, 333), chunk_chars=chunk) == read_import(text)


def test_a_long_text_s_line_numbers_and_first_printings_survive_the_chunks() -> None:
    rows = [f"| NCT{10000000 + i % 50:08d} | Trial number {i} | Recruiting |\n" for i in range(400)]
    text = "Intro naming NCT10000007 in prose, and NCT123.\n\n" + "".join(rows)
    assert read_import_pieces([text], chunk_chars=1000) == read_import(text)


def test_a_bare_list_of_ids_is_read_a_bounded_number_of_lines_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading holds a few hundred bytes a line: a list of ids is read ``chunk_lines`` lines
    at a time, however few characters those are, and gives what one reading gives."""
    text = "".join(f"NCT{20000000 + i:08d}\n" for i in range(5_000))
    whole = read_import(text)
    chunks: list[str] = []

    read_chunk = importtext._read_into

    def reading(gather: Any, chunk: str, lines_before: int) -> None:
        chunks.append(chunk)
        read_chunk(gather, chunk, lines_before)

    monkeypatch.setattr(importtext, "_read_into", reading)
    assert read_import_pieces(_pieces(text, 333), chunk_lines=1000) == whole
    assert len(chunks) >= 5
    assert max(chunk.count("\n") for chunk in chunks) <= 1000


def test_a_long_list_keeps_every_line_and_every_printing_across_its_chunks() -> None:
    """A result holds ids, lines and printings apart (a list of 100,000 ids prints nothing
    beside most): none is lost or moved, though the printing of a trial comes chunks after its
    first line, and a title and a status come from different rows."""
    bare = [f"NCT{30000000 + i:08d}" for i in range(300)]
    text = (
        "".join(f"{nct_id}\n" for nct_id in bare)  # lines 1-300
        + "\n| NCT30000007 | A first title | Recruiting |\n"  # line 302: first line is 8
        + "\n| NCT39999999 | A title only, twice over |  |\n"  # line 304
        + "\n| NCT39999998 | Not yet recruiting |\n"  # line 306
        + "".join(f"see NCT{31000000 + i:08d}\n" for i in range(200))  # lines 307-506
        + "| NCT39999999 | Completed |\n"  # line 507: its status, 203 lines on
        + "| NCT30000007 | Another title | Terminated |\n"  # the first printing stays
        + "| NCT39999998 | Its title, long after its status |\n"  # line 509
        + "NCT1234567 at the end\n"  # line 510
    )
    result = read_import_pieces(_pieces(text, 333), chunk_lines=64)
    printings = {
        "NCT30000007": ("RECRUITING", "Recruiting", "A first title"),
        "NCT39999999": ("COMPLETED", "Completed", "A title only, twice over"),
        "NCT39999998": (
            "NOT_YET_RECRUITING",
            "Not yet recruiting",
            "Its title, long after its status",
        ),
    }
    expected = tuple(
        ImportedTrial(nct_id, line, *printings.get(nct_id, (None, None, None)))
        for nct_id, line in (
            *((nct_id, k) for k, nct_id in enumerate(bare, start=1)),
            ("NCT39999999", 304),
            ("NCT39999998", 306),
            *((f"NCT{31000000 + i:08d}", 307 + i) for i in range(200)),
        )
    )
    assert result.trials == expected
    assert tuple(result) == expected
    assert len(result) == len(expected) == 502
    assert result.nct_ids == tuple(t.nct_id for t in expected)
    assert list(result.printed()) == [
        (t.nct_id, t.printed_status, t.printed_status_text, t.printed_title) for t in expected
    ]
    assert result.skipped == (Skipped("NCT1234567", "7 digits", 510),)
    assert result == read_import(text)
    assert result == ImportResult(expected, result.skipped)


def test_results_differing_only_in_a_line_or_a_printing_are_not_equal() -> None:
    """Equality is what the chunked reading is tested by: it looks at lines and printings."""
    trials = (ImportedTrial("NCT30000001", 1), ImportedTrial("NCT30000002", 2, None, None, "T"))
    same = ImportResult(trials, ())
    assert same == ImportResult(list(trials), ())
    for other in (
        (trials[0], dataclasses.replace(trials[1], line=3)),
        (trials[0], dataclasses.replace(trials[1], printed_title=None)),
        (dataclasses.replace(trials[0], printed_status_text="Ongoing"), trials[1]),
        (trials[0],),
    ):
        assert same != ImportResult(other, ())
    assert same != ImportResult(trials, (Skipped("NCT1", "1 digit", 1),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        same.skipped = ()  # type: ignore[misc]


def _run_import(path: Path, tmp_path: Path) -> tuple[int, str, int]:
    """Exit code, stderr and peak resident memory (KiB) of `watch import PATH --dry-run`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALWATCH_")}
    env["TRIALWATCH_CONFIG"] = str(SHIPPED_CONFIG)
    env["TRIALWATCH_DATABASE__URL"] = f"sqlite:///{tmp_path / 'tw.db'}"
    proc = subprocess.Popen(
        [str(TRIALWATCH), "watch", "import", str(path), "--dry-run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    with proc.stderr:
        err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, usage.ru_maxrss


@pytest.mark.e2e
@pytest.mark.slow
def test_memory_stays_flat_however_large_the_text(tmp_path: Path) -> None:
    row = (
        "| NCT{:08d} | A phase 3 study of selinexor and dexamethasone, patient {} | Recruiting |\n"
    )
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_text("".join(row.format(10000000 + i % 300, i) for i in range(2_000)))
    with large.open("w") as fh:
        i = 0
        while fh.tell() < 10_000_000:  # 10 MB: read whole, it held over 100 MiB more
            fh.write(row.format(10000000 + i % 300, i))
            i += 1
    code_small, _, peak_small = _run_import(small, tmp_path)
    code_large, err, peak_large = _run_import(large, tmp_path)
    assert (code_small, code_large) == (0, 0), err
    grew_mib = (peak_large - peak_small) / 1024
    print(
        f"watch import: peak {peak_small / 1024:.0f} MiB (0.2 MB), "
        f"{peak_large / 1024:.0f} MiB (10 MB)"
    )
    assert grew_mib < 16, f"peak memory grew by {grew_mib:.0f} MiB with a 50x larger text"


@pytest.mark.e2e
@pytest.mark.parametrize(
    "head",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\x00",
        b"PK\x03\x04\x14\x00",
    ],
    ids=["png", "pdf", "xlsx"],
)
def test_a_binary_file_is_refused_plainly(tmp_path: Path, head: bytes) -> None:
    path = tmp_path / "scan.bin"
    path.write_bytes(head + b"\x00\x01 NCT01607905 \x00" * 100)
    code, err, _ = _run_import(path, tmp_path)
    assert code == 2
    assert "is a binary file, not text" in err
    assert "Traceback" not in err
    assert not (tmp_path / "tw.db").exists()


@pytest.mark.e2e
def test_utf16_text_with_its_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "excel.txt"
    path.write_bytes("NCT number\tTitle\nNCT01607905\tSTORM\n".encode("utf-16"))
    code, err, _ = _run_import(path, tmp_path)
    assert code == 0, err


def test_a_result_pickles_and_copies_whole() -> None:
    """The compact result is made again from its parts when pickled or copied (its frozen
    __setattr__ would refuse the default way), printings and lines included."""
    import copy
    import pickle

    result = read_import("NCT30000007 | A title | Recruiting\nNCT30000008\nNCT123\n")
    assert result.trials[0].printed_status == "RECRUITING" and result.skipped
    for again in (
        pickle.loads(pickle.dumps(result)),  # noqa: S301 - our own bytes
        copy.copy(result),
        copy.deepcopy(result),
    ):
        assert again == result and again.trials == result.trials

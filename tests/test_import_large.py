"""``watch import`` of a text far larger than a review, and of files that are not text: memory
stays flat in the text's size; a binary file is refused plainly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e import SHIPPED_CONFIG, TRIALWATCH
from trialwatch import importtext
from trialwatch.importtext import ImportResult, read_import, read_import_pieces

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

    read_chunk = importtext._read_import

    def reading(chunk: str, lines_before: int) -> ImportResult:
        chunks.append(chunk)
        return read_chunk(chunk, lines_before)

    monkeypatch.setattr(importtext, "_read_import", reading)
    assert read_import_pieces(_pieces(text, 333), chunk_lines=1000) == whole
    assert len(chunks) >= 5
    assert max(chunk.count("\n") for chunk in chunks) <= 1000


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

"""Reading NCT numbers, and what a paper printed beside them, out of any text. Pure.

``trialwatch watch import`` hands :func:`read_import` the text of a file — a plain list, a CSV,
an e-mail, a review pasted from a PDF — and gets back the trials it names, in order of first
appearance, and what looked like an NCT number but was not, with the reason. No I/O: text in,
values out.

**NCT numbers** are found anywhere, in any case, with spaces or a hyphen after ``NCT`` and between
digit groups (``nct 0160 7905``, ``NCT-01607905``), broken by a line break or a hyphenation
(``NCT0160-`` / ``7905``, also inside ``>`` quoted e-mail lines), or wrapped inside a table cell.
A number has exactly 8 digits: ``NCT1234567`` and ``NCT123456789`` are skipped and reported, and
an 8-digit number without ``NCT`` before it is not an id.

**What was printed beside a number** is read from table rows only: the status as printed
("Active, not recruiting", mapped to the CT.gov enum ``ACTIVE_NOT_RECRUITING``) and the title (or
the disease, where the table gives that instead). A table row is a line cut into cells — by
``|``, tabs, commas or semicolons (a CSV), or runs of two or more spaces (columns aligned by a
PDF's text layer) — in which one cell holds the NCT number and nothing else. Cells wrapped onto
the following lines are joined back (by cell for ``|`` tables, by column for aligned ones, by
quotes for CSV). A header row ("NCT number | Study title | Status") says which column is which;
without one, a cell that reads as a status is the status and the longest cell of words is the
title. Prose gives neither, however often it repeats an id.

A table may also stand **one cell per line**, as text taken from a journal's web page gives it:
each cell on its own indented line (a tab, " \t" or spaces), a line without indent going on
with the cell above (a wrapped title, "bortezo-" / "mib"), rows parted by blank lines, and the
header's cells ("NCT Number", "Study Title", "Status") each on a line under the caption. Such a
table is read only under its header, row by row until the prose after it.

Known limits: a table whose cells are centred vertically (the title's first line above the NCT
number's line) loses the lines above; a header wrapped over two lines is not recognised; in a
table of one cell per line, a row that leaves a cell out (no line for it) is read without its
header, as a row without one is.

Every pattern here reads a run of spaces with one quantifier, and a table of one cell per line
is looked for only where an NCT number follows within a few dozen lines, so that reading is
linear in the text's length, whatever it holds.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import re
import unicodedata
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from trialwatch.ids import nct_id_problem
from trialwatch.vocabulary import EXPANDED_ACCESS_STATUSES, OVERALL_STATUS_LABELS, OVERALL_STATUSES

__all__ = [
    "ImportResult",
    "ImportedTrial",
    "Skipped",
    "parse_status",
    "read_import",
    "read_import_pieces",
]

ID_DIGITS = 8


@dataclass(frozen=True, slots=True)
class ImportedTrial:
    """One NCT number found in a text, with what its table row printed beside it.

    ``line`` is the 1-based line of its first appearance. ``printed_status`` is the CT.gov enum
    (``"ACTIVE_NOT_RECRUITING"``) that ``printed_status_text`` (the words as printed, e.g.
    "Active, not recruiting") names; the words may come alone, without an enum, when a "Status"
    column holds words that name no status ("Ongoing"). ``printed_title`` is the row's title, or
    its disease where the table gives that. All three are None where no table row gives them.
    """

    nct_id: str
    line: int
    printed_status: str | None = None
    printed_status_text: str | None = None
    printed_title: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something written like an NCT number that is not one, e.g. ``NCT1234567: 7 digits``."""

    text: str  # "NCT" and the digits read, e.g. "NCT1234567"
    reason: str  # e.g. "7 digits"
    line: int  # 1-based line of its first appearance

    def __str__(self) -> str:
        return f"{self.text}: {self.reason} (line {self.line})"


_Print = tuple[str | None, str | None, str | None]  # (status, status as printed, title)
_NOTHING_PRINTED: _Print = (None, None, None)
# Line numbers in an array of unsigned ints: 4 bytes each, room for 4 billion lines (an import
# reads text held in memory whole: far fewer).
_LINE_CODE = "I"


class ImportResult:
    """The trials a text names, each once, in order of first appearance; and what was skipped.

    Held compactly, since a bare list of ids may name 100,000 trials and most lines of one print
    nothing beside the id: the ids in one tuple (:attr:`nct_ids`), their lines in one array, and
    what was printed only for the trials beside which something was. Iterating builds one
    :class:`ImportedTrial` at a time; :attr:`trials` builds them all at once, which suits a
    review's few dozen (held for 100,000 ids, with the dict that gathered them, they took
    ``watch import``'s peak from 80 to 91 MiB). Immutable; two results are equal when they name
    the same trials, at the same lines, with the same printings, and skipped the same things.
    ``len()`` is the number of trials, so a result that found none is false. Unlike the frozen
    dataclass it was, ``dataclasses.replace`` and ``asdict`` do not apply; it pickles and copies
    (by its parts). :attr:`trials` is made anew at each reading: read it once.
    """

    __slots__ = ("_ids", "_lines", "_printed", "_skipped")

    _ids: tuple[str, ...]
    _lines: array[int]  # the 1-based line of each id
    _printed: dict[int, _Print]  # by index in _ids, where anything was printed
    _skipped: tuple[Skipped, ...]

    def __init__(
        self, trials: Iterable[ImportedTrial] = (), skipped: Iterable[Skipped] = ()
    ) -> None:
        trials = tuple(trials)
        printed = {
            k: (t.printed_status, t.printed_status_text, t.printed_title)
            for k, t in enumerate(trials)
        }
        self._init(
            tuple(t.nct_id for t in trials),
            array(_LINE_CODE, (t.line for t in trials)),
            {k: p for k, p in printed.items() if p != _NOTHING_PRINTED},
            tuple(skipped),
        )

    @classmethod
    def _of(
        cls,
        nct_ids: tuple[str, ...],
        lines: array[int],
        printed: dict[int, _Print],
        skipped: tuple[Skipped, ...],
    ) -> ImportResult:
        """A result made of its parts, with no object per trial made on the way."""
        result = cls.__new__(cls)
        result._init(nct_ids, lines, printed, skipped)
        return result

    def _init(
        self,
        nct_ids: tuple[str, ...],
        lines: array[int],
        printed: dict[int, _Print],
        skipped: tuple[Skipped, ...],
    ) -> None:
        set_ = object.__setattr__  # frozen, as the dataclass it was
        set_(self, "_ids", nct_ids)
        set_(self, "_lines", lines)
        set_(self, "_printed", printed)
        set_(self, "_skipped", skipped)

    def __reduce__(self) -> tuple[Any, ...]:
        # Made again from its parts: the default (its slots set one by one) would meet the
        # __setattr__ below.
        return (ImportResult._of, (self._ids, self._lines, self._printed, self._skipped))

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    @property
    def nct_ids(self) -> tuple[str, ...]:
        return self._ids

    @property
    def skipped(self) -> tuple[Skipped, ...]:
        return self._skipped

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[ImportedTrial]:
        for k, nct_id in enumerate(self._ids):
            yield ImportedTrial(nct_id, self._lines[k], *self._printed.get(k, _NOTHING_PRINTED))

    @property
    def trials(self) -> tuple[ImportedTrial, ...]:
        """Every trial as an :class:`ImportedTrial`, made now (iterate the result for many)."""
        return tuple(self)

    def printed(self) -> Iterator[tuple[str, str | None, str | None, str | None]]:
        """(nct_id, status enum, status as printed, title) for every trial, in order; None
        where nothing was printed."""
        for k, nct_id in enumerate(self._ids):
            yield (nct_id, *self._printed.get(k, _NOTHING_PRINTED))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImportResult):
            return NotImplemented
        return (
            self._ids == other._ids
            and self._lines == other._lines
            and self._printed == other._printed
            and self._skipped == other._skipped
        )

    def __hash__(self) -> int:
        return hash((self._ids, self._skipped))

    def __repr__(self) -> str:
        return f"ImportResult(trials={self.trials!r}, skipped={self.skipped!r})"


class _Gather:
    """Trials found, gathered into an :class:`ImportResult`: each once, at its first line, with
    the first status and the first title printed for it (a later printing fills what an earlier
    one left out, never replaces it).

    Holds a str and a line a trial, and a tuple for each trial beside which something was
    printed; ``seen`` (to make each trial once) is let go before the result is made.
    """

    __slots__ = ("ids", "lines", "printed", "seen", "skipped")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lines = array(_LINE_CODE)
        self.seen: set[str] = set()
        # By id while reading: a printing may come in a later chunk than the id's first line.
        self.printed: dict[str, _Print] = {}
        self.skipped: dict[str, Skipped] = {}

    def add(self, nct_id: str, line: int, printed: _Print = _NOTHING_PRINTED) -> None:
        if nct_id not in self.seen:
            self.seen.add(nct_id)
            self.ids.append(nct_id)
            self.lines.append(line)
        if printed == _NOTHING_PRINTED:
            return
        before = self.printed.get(nct_id)
        if before is None:
            self.printed[nct_id] = printed
            return
        status, status_text, title = before
        if status_text is None and printed[1] is not None:
            status, status_text = printed[0], printed[1]
        if title is None:
            title = printed[2]
        self.printed[nct_id] = (status, status_text, title)

    def skip(self, skipped: Skipped) -> None:
        self.skipped.setdefault(skipped.text, skipped)

    def result(self) -> ImportResult:
        self.seen.clear()
        by_id, ids = self.printed, tuple(self.ids)
        self.ids.clear()
        printed = {k: by_id[i] for k, i in enumerate(ids) if i in by_id} if by_id else {}
        return ImportResult._of(ids, self.lines, printed, tuple(self.skipped.values()))


# --- statuses as people write them -------------------------------------------------------------


def _status_key(text: str) -> str:
    """``"Active, not re-\\ncruiting (2021)*"`` -> ``"active not recruiting"``."""
    t = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    t = re.sub(r"-[ \t]*\n\s*", "", t)  # a word hyphenated at a line break
    t = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", t)  # "(slow accrual)", "[12]"
    t = re.sub(r"[^a-z]+", " ", t.lower()).strip()
    return re.sub(r"\s+(?:has|with)\s+results$", "", t)


_STATUSES: dict[str, str] = {}
for _enum, _label in OVERALL_STATUS_LABELS.items():
    _STATUSES[_status_key(_label)] = _enum  # "Active, not recruiting"
    _STATUSES[_status_key(_enum)] = _enum  # "ACTIVE_NOT_RECRUITING"
_STATUSES.update(
    {
        # "not yet" is what this says: the trial has not started recruiting.
        "active not yet recruiting": "NOT_YET_RECRUITING",
        "status unknown": "UNKNOWN",
    }
)
# A cell that is not under a "Status" header is taken as a status only if it names one of these
# (the expanded-access statuses, "Available" and the like, read as other things in a table).
_STUDY_STATUSES = OVERALL_STATUSES - EXPANDED_ACCESS_STATUSES


def parse_status(text: str) -> str | None:
    """The CT.gov overall-status enum that ``text`` names as a whole, or None.

    Case, punctuation, spacing, a hyphenated line break, a parenthesis ("Terminated (slow
    accrual)") and footnote marks do not matter: "Active, not recruiting", "ACTIVE,NOT
    RECRUITING", "active_not_recruiting" all give ``ACTIVE_NOT_RECRUITING``. "Active, not yet
    recruiting" gives ``NOT_YET_RECRUITING``. Words that merely contain a status ("recruiting
    since 2021") give None.
    """
    return _STATUSES.get(_status_key(text))


# --- the text, prepared -------------------------------------------------------------------------

# One character for one, so that columns stay where the text put them.
_PREPARE = str.maketrans(
    {
        **dict.fromkeys(map(ord, "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), "\n"),
        **dict.fromkeys(map(ord, "\u00a0\u1680\u202f\u205f\u3000"), " "),
        **dict.fromkeys(range(0x2000, 0x200B), " "),  # en quad .. hair space
        **dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), " "),
        **{0xFF10 + d: str(d) for d in range(10)},  # full-width digits
    }
)


@dataclass(frozen=True, slots=True)
class _Line:
    number: int  # 1-based
    offset: int  # of ``text`` in the prepared text
    text: str  # without an e-mail quote prefix ("> ")


_QUOTE = re.compile(r"(?:[ \t]*>)+[ \t]?")


def _lines(text: str) -> list[_Line]:
    lines = []
    offset = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        quote = _QUOTE.match(raw)
        skip = quote.end() if quote else 0
        lines.append(_Line(number, offset + skip, raw[skip:]))
        offset += len(raw) + 1
    return lines


# --- NCT numbers --------------------------------------------------------------------------------

_DASHES = "\\-\u00ad\u2010\u2011\u2012\u2013\u2014\u2212"
# "NCT", then a colon, '#' or a dash and spaces, or a line break, before the first digit.
# (Each run of spaces is read by one quantifier only: "NCT" before a long run of spaces that
# ends in no digit costs a pass over the run, not one per way of splitting it.)
_START = re.compile(
    rf"(?<![A-Za-z0-9])NCT[ \t]*(?:[:#{_DASHES}][ \t]*)?(?:\n[ \t>]*)?(?=[0-9])", re.IGNORECASE
)
_DIGITS = re.compile(r"[0-9]+")
# Between two digit groups of one number: one space, a dash (spaced or not), or a line break
# (after a hyphenation, before an e-mail quote mark). Two spaces part table columns: not a gap.
_GAP = re.compile(
    rf"(?:[ \t]?[{_DASHES}][ \t]?|[ \t]|[ \t]*(?:[{_DASHES}][ \t]*)?\n[ \t>]*)(?=[0-9])"
)


def _read_number(text: str, pos: int) -> str:
    """The digits of the number that starts at ``pos``: whole digit groups while they fit in 8.

    "0160 7905" is one number, and so is "0160\\n7905"; "01607905 2014" stops before the year,
    and so does "1234567 2014" (reported as 7 digits). A run of 9 digits is read whole.
    """
    first = _DIGITS.match(text, pos)
    assert first is not None  # _START looked ahead for a digit
    digits, end = first.group(), first.end()
    while len(digits) < ID_DIGITS:
        gap = _GAP.match(text, end)
        if gap is None:
            break
        group = _DIGITS.match(text, gap.end())
        assert group is not None
        if len(digits) + len(group.group()) > ID_DIGITS:
            break
        digits, end = digits + group.group(), group.end()
    return digits


def _numbers(text: str) -> Iterator[tuple[int, str]]:
    """(offset of "NCT", digits read) for every number written after "NCT" in ``text``."""
    for match in _START.finditer(text):
        yield match.start(), _read_number(text, match.end())


# --- table rows ---------------------------------------------------------------------------------

_CHUNK = re.compile(r"[^ \t]+(?: [^ \t]+)*")  # text between runs of 2+ spaces (or tabs)
_RULE = re.compile(r"[\s|:+=_\-\u2014\u2500-\u257f]*")  # "|----|:---|", "=====", box drawing
_ID_CELL = re.compile(
    rf"[\"'(\[*\s]*NCT[ \t]*(?:[:#{_DASHES}][ \t]*)?"
    rf"[0-9](?:[0-9{_DASHES}]|[ \t\n>]+[0-9{_DASHES}])*"  # spaces only between digits
    r"(?:[ \t]?[a-z*\u2020\u2021\u00a7])?[\"')\].,;:\s]*",
    re.IGNORECASE,
)  # the number alone, perhaps in quotes or brackets, perhaps with a footnote mark
_ID_REST = re.compile(rf"[0-9 \t{_DASHES}]*")  # what a wrapped id cell continues with
_ALIGN_TOLERANCE = 2  # columns a wrapped line may drift from its cell's start
_CSV_MAX_LINES = 30  # a quoted CSV field may span lines; not the rest of the file

_ID_HEADER = re.compile(r"\bnct|identifier|registration|registry|trial\s*id|clinicaltrials", re.I)
_STATUS_HEADER = re.compile(r"\bstatus\b|\brecruitment\b", re.I)
_TITLE_HEADERS = (  # by preference: a title, else the disease, else a name
    re.compile(r"\btitle\b", re.I),
    re.compile(r"diseas|condition|indication|population|patients|tumou?r|cancer|diagnos", re.I),
    re.compile(r"\b(?:description|study|trial|name)\b", re.I),
)


@dataclass(frozen=True, slots=True)
class _Split:
    kind: str  # "|", "\t", ",", ";" or " " (aligned columns)
    cells: tuple[str, ...]
    starts: tuple[int, ...]  # each cell's column in the line ("|" and " " only)
    borders: tuple[bool, bool] = (False, False)  # "| a | b |" rather than "a | b" ("|" only)


def _split(text: str, kind: str, borders: tuple[bool, bool] | None = None) -> _Split | None:
    """``text`` cut into cells the ``kind`` way, or None when it does not cut that way.

    A ``|`` line's outer borders are found on it, or given (``borders``) for a line that
    continues a row: "|   | more |" continues "| NCT… | a |", and "    | more" continues
    "NCT… | a" (its first cell is empty, not a border).
    """
    if kind == " ":
        chunks = list(_CHUNK.finditer(text))
        if len(chunks) < 2:
            return None
        return _Split(kind, tuple(c.group() for c in chunks), tuple(c.start() for c in chunks))
    if kind not in text:
        return None
    if kind in ",;":
        fields = next(csv.reader(text.splitlines(keepends=True), delimiter=kind), [])
        return _Split(kind, tuple(fields), ()) if len(fields) >= 2 else None
    parts = text.split(kind)
    starts, at = [], 0
    for part in parts:
        starts.append(at)
        at += len(part) + 1
    left = right = False
    if kind == "|":
        stripped = text.strip()
        left, right = borders or (stripped.startswith("|"), stripped.endswith("|"))
        if left:
            parts, starts = parts[1:], starts[1:]
        if right and parts:
            parts, starts = parts[:-1], starts[:-1]
    if not parts or (kind == "\t" and len(parts) < 2):
        return None
    return _Split(kind, tuple(parts), tuple(starts), (left, right))


@dataclass(slots=True)
class _Header:
    kind: str
    size: int
    starts: tuple[int, ...]
    roles: dict[str, int]  # "id", "status", "title" -> column


def _roles(cells: tuple[str, ...]) -> dict[str, int] | None:
    """Which of a header row's cells name the NCT number, the status and the title; None unless
    there is an NCT-number column and a status or title column."""
    roles: dict[str, int] = {}
    for k, cell in enumerate(cells):
        if "id" not in roles and _ID_HEADER.search(cell):
            roles["id"] = k
        elif "status" not in roles and _STATUS_HEADER.search(cell):
            roles["status"] = k
    for pattern in _TITLE_HEADERS:
        found = [
            k for k, cell in enumerate(cells) if k not in roles.values() and pattern.search(cell)
        ]
        if found:
            roles["title"] = found[0]
            break
    return roles if "id" in roles and len(roles) >= 2 else None


def _header(text: str) -> _Header | None:
    """The header row of a table that has an NCT-number column and a status or title column."""
    for kind in ("|", "\t", " ", ",", ";"):
        split = _split(text, kind)
        if split is None:
            continue
        roles = _roles(split.cells)
        if roles is not None:
            return _Header(kind, len(split.cells), split.starts, roles)
    return None


def _nearest(starts: tuple[int, ...], column: int) -> int:
    return min(range(len(starts)), key=lambda k: abs(starts[k] - column))


@dataclass(slots=True)
class _Row:
    """One table row: its cells, each the fragments of its lines, and which cell is the id."""

    kind: str
    offset: int  # of the "NCT" in the prepared text
    cells: list[list[str]]
    starts: tuple[int, ...]
    borders: tuple[bool, bool]
    id_cell: int
    end: int  # index of the first line after the row
    header: _Header | None = None

    def cell(self, k: int) -> str:
        return "\n".join(self.cells[k])


def _row(lines: list[_Line], i: int, header: _Header | None, csv_width: int | None) -> _Row | None:
    """The table row that starts at line ``i``, or None when the line is not one."""
    text = lines[i].text
    starts = list(_START.finditer(text))
    if not starts or len({_read_number(text, m.end()) for m in starts}) != 1:
        return None  # no number, or several different ones: a list or prose, not a row
    for kind in ("|", "\t", " ", ",", ";"):
        end = i + 1
        record = text
        if kind in ",;" and text.count('"') % 2:
            # A quoted CSV field goes on over the next lines until its quotes close.
            while end < min(len(lines), i + _CSV_MAX_LINES) and record.count('"') % 2:
                record += "\n" + lines[end].text
                end += 1
        split = _split(record, kind)
        if split is None:
            continue
        id_cells = [k for k, cell in enumerate(split.cells) if _ID_CELL.fullmatch(cell)]
        if not id_cells and kind in "|\t":
            # Prose is not cut by these: the id's cell may say more ("SEAL (NCT02606461)").
            id_cells = [k for k, cell in enumerate(split.cells) if _START.search(cell)]
        if not id_cells or (kind != "|" and len(split.cells) < 2):
            continue
        if kind in ",;" and not _csv_confirmed(lines, end, split, header, csv_width):
            continue
        row = _Row(
            kind=kind,
            offset=lines[i].offset + starts[0].start(),
            cells=[[cell] for cell in split.cells],
            starts=split.starts,
            borders=split.borders,
            id_cell=id_cells[0],
            end=end,
        )
        if kind in "| ":
            _continue_row(row, lines)
        if header is not None and header.kind == kind:
            row.header = header
        return row
    return None


def _csv_confirmed(
    lines: list[_Line], end: int, split: _Split, header: _Header | None, width: int | None
) -> bool:
    """Commas cut prose too. A CSV row has its header's width; without a header, it has the
    width of the CSV row before or after it, and no space after its commas (", which")."""
    size = len(split.cells)
    if header is not None and header.kind == split.kind and header.size == size:
        return True
    if not _bare(split):
        return False
    if width == size:
        return True
    following = next((line.text for line in lines[end:] if line.text.strip()), None)
    after = None if following is None else _split(following, split.kind)
    return (
        after is not None
        and len(after.cells) == size
        and _bare(after)
        and any(_ID_CELL.fullmatch(cell) for cell in after.cells)
    )


def _bare(split: _Split) -> bool:
    return not any(cell[:1].isspace() for cell in split.cells[1:])


def _continue_row(row: _Row, lines: list[_Line]) -> None:
    """Add the lines that continue ``row``'s cells: no number of their own, their text in the
    row's columns, and nothing but the rest of a number in the id column."""
    while row.end < len(lines):
        text = lines[row.end].text
        if not text.strip() or _START.search(text) or _RULE.fullmatch(text):
            return
        placed: dict[int, str] = {}
        if row.kind == "|":
            split = _split(text, "|", row.borders)
            if split is None or len(split.cells) != len(row.cells):
                return
            placed = dict(enumerate(split.cells))
        else:
            for chunk in _CHUNK.finditer(text):
                k = _nearest(row.starts, chunk.start())
                if abs(row.starts[k] - chunk.start()) > _ALIGN_TOLERANCE or k in placed:
                    return
                placed[k] = chunk.group()
        if not _ID_REST.fullmatch(placed.get(row.id_cell, "").strip()):
            return
        for k, fragment in placed.items():
            row.cells[k].append(fragment)
        row.end += 1


# --- what a row printed -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Printed:
    status: str | None
    status_text: str | None
    title: str | None


def _clean(text: str, *, keep_hyphens: bool) -> str:
    """A cell's lines as one line of text: ligatures and odd spaces as plain characters."""
    t = unicodedata.normalize("NFKC", text).replace("\u00ad\n", "").replace("\u00ad", "")
    # "soft-\ntissue" keeps its hyphen in a title; "re-\ncruiting" loses it in a status.
    t = re.sub(r"-[ \t]*\n\s*", "-" if keep_hyphens else "", t)
    return " ".join(t.split()).strip(" \"'*\u2020\u2021")


_URL = re.compile(r"://|\bwww\.", re.IGNORECASE)


def _words(text: str) -> int:
    return len(re.findall(r"[^\W\d_]{2,}", text))


def _columns(row: _Row) -> dict[str, int]:
    """Which of the row's cells the header names "status" and "title" (empty without one)."""
    header = row.header
    if header is None:
        return {}
    if row.kind == " ":
        columns = {role: _nearest(row.starts, header.starts[k]) for role, k in header.roles.items()}
    elif header.size == len(row.cells):
        columns = dict(header.roles)
    else:
        return {}
    if columns.get("id") != row.id_cell or len(set(columns.values())) != len(columns):
        return {}  # the header does not fit this row: read it as if there were none
    return columns


def _printed(row: _Row) -> _Printed:
    cells = [row.cell(k) for k in range(len(row.cells))]
    others = [k for k in range(len(cells)) if k != row.id_cell]
    columns = _columns(row)
    status_at: set[int] = set()
    status = status_text = None
    if "status" in columns:
        k = columns["status"]
        status_text = _clean(cells[k], keep_hyphens=False) or None
        status = parse_status(cells[k]) if status_text else None
        status_at.add(k)
    elif not columns:
        # No header: the rightmost cell that names a study status. (In a CSV, "Active, not
        # recruiting" is one cell only when quoted, as spreadsheets write it.)
        for k in reversed(others):
            found = parse_status(cells[k])
            if found in _STUDY_STATUSES:
                status, status_text = found, _clean(cells[k], keep_hyphens=False)
                status_at.add(k)
                break
    title = None
    if "title" in columns:
        text = _clean(cells[columns["title"]], keep_hyphens=True)
        title = text if _words(text) else None
    elif not columns:
        texts = [
            _clean(cells[k], keep_hyphens=True)
            for k in others
            if k not in status_at and parse_status(cells[k]) is None
        ]
        texts = [t for t in texts if _words(t) >= 2 and not _URL.search(t)]
        title = max(texts, key=len) if texts else None
    return _Printed(status, status_text, title)


# --- tables laid out one cell per line -----------------------------------------------------------
#
# Text taken from a journal's HTML (or some PDF converters) gives each cell its own line:
#
#     Table 2. List of registered clinical trials ...
#     <tab>NCT Number
#     <tab>Study Title
#     <tab>Status
#
#
#     <tab>NCT04811196
#     <tab>Selinexor dosing schedules in soft
#     tissue sarcoma (METSSAR)
#     <tab>Recruiting
#
# A run of lines without a blank one is a group (or, where the header's cells stand a blank line
# apart, a run without two blank lines together). In a group, an indented line starts a cell
# and a line without indent goes on with the cell above (a wrapped title, "bortezo-" / "mib");
# in a group with no indented line, each line is a cell. The header is a group of short cells
# naming an NCT-number column and a status or title column (after the caption, when the caption
# shares its group). Each group after it that holds an NCT number is a row, or several rows of
# the header's width, until a group that is neither a row nor a row's width of cells.

_CAPTION = re.compile(
    r"(?:table|tab\.)\s*[a-z]?\d+[a-z]?\b", re.IGNORECASE
)  # "Table 2.", "Table S1"
_HEADER_CELL_CHARS = 60  # a header cell is a few words; prose is longer
_HEADER_CELL_WORDS = 6
_CELL_ROW_MAX = 24  # cells of one row; more is not a table this reader can place
_HEADER_MAX_LINES = 3 * _CELL_ROW_MAX  # a caption, a header and the start of a row
_PROBE_ROWS = 3  # rows under a header, one at least of its width
_HEADER_REACH = _HEADER_MAX_LINES + 2 * _CELL_ROW_MAX  # lines from a header to its first NCT


@dataclass(frozen=True, slots=True)
class _Cell:
    line: int  # index in ``lines`` of its first line
    fragments: tuple[str, ...]  # its lines, indent removed


def _group(lines: list[_Line], i: int, gap: int, limit: int) -> int:
    """The index just after the group that starts at ``i``: non-blank lines with at most ``gap``
    blank lines together between them (and at most ``limit`` lines)."""
    end = k = i
    while k < len(lines) and k - i < limit:
        if lines[k].text.strip():
            end = k = k + 1
        elif k - end < gap:
            k += 1
        else:
            break
    return end


def _cells(lines: list[_Line], start: int, end: int) -> list[_Cell]:
    """The cells of the group ``lines[start:end]``, blank lines aside."""
    texts = [(k, lines[k].text) for k in range(start, end) if lines[k].text.strip()]
    indented = any(text[:1] in " \t" for _, text in texts)
    cells: list[tuple[int, list[str]]] = []
    for k, text in texts:
        if cells and indented and text[:1] not in " \t":
            cells[-1][1].append(text.strip())
        else:
            cells.append((k, [text.strip()]))
    return [_Cell(line, tuple(fragments)) for line, fragments in cells]


def _cell_header(cells: list[_Cell], whole: bool) -> tuple[_Header, int] | None:
    """The header that the group ``cells`` begins with, and the index of the cell after it: the
    whole group, or the cells before the first row when no blank line parts them. ``whole``
    says whether ``cells`` is the whole group or only its beginning."""
    skip = 1 if cells and _CAPTION.match(cells[0].fragments[0]) else 0
    texts = [" ".join(cell.fragments) for cell in cells[skip : skip + _CELL_ROW_MAX + 1]]
    id_header = next((k for k, t in enumerate(texts) if _ID_HEADER.search(t)), None)
    if id_header is None:
        return None
    first_id = next((k for k, t in enumerate(texts) if _START.search(t)), None)
    # The header alone in its group, or one whose first row's NCT number stands under it.
    if first_id is None and not whole:
        return None
    size = len(cells) - skip if first_id is None else first_id - id_header
    if not id_header < size <= _CELL_ROW_MAX or not all(map(_header_like, texts[:size])):
        return None
    roles = _roles(tuple(texts[:size]))
    if roles is None or roles["id"] != id_header:
        return None
    return _Header("\n", size, (), roles), skip + size


def _header_like(text: str) -> bool:
    """A header cell is a few words, not a line of prose: "NCT Number", "Study Title"."""
    return (
        len(text) <= _HEADER_CELL_CHARS
        and len(text.split()) <= _HEADER_CELL_WORDS
        and not text[:1].islower()
        and text[-1:] not in ".,;"
    )


def _table_of_cells(lines: list[_Line], start: int) -> tuple[list[_Row], int] | None:
    """The rows of the one-cell-per-line table whose header group starts at line ``start``, and
    the index of the line after the table; None when no such header starts there."""
    found = None
    for gap in (0, 1):
        # The header is read from the group's first lines only: a long group of short lines
        # (which is no header) costs the same at each of its lines.
        end = _group(lines, start, gap, _HEADER_MAX_LINES)
        cells = _cells(lines, start, end)
        whole = end - start < _HEADER_MAX_LINES
        found = _cell_header(cells, whole)
        if found is not None:
            break
        one = cells[0].fragments if len(cells) == 1 else ()
        if gap or not one or not _header_like(" ".join(one)):
            return None  # (one cell alone: the header's cells may stand a blank line apart)
    if found is None:
        return None
    header, taken = found
    if not whole:
        end = _group(lines, start, gap, len(lines))
        cells = _cells(lines, start, end)
    rows = _group_rows(lines, cells[taken:], end, header)
    i = end
    while True:
        # A header none of whose first rows is of its width was a few short lines of something
        # else; said at once, so that a long run of rows is not read again for every such line.
        if len(rows) >= _PROBE_ROWS and all(row.header is None for row in rows[:_PROBE_ROWS]):
            return None
        while i < len(lines) and not lines[i].text.strip():
            i += 1
        if i == len(lines):
            break
        end = _group(lines, i, gap, len(lines))
        cells = _cells(lines, i, end)
        found_rows = _group_rows(lines, cells, end, header)
        if (not found_rows and len(cells) != header.size) or _starts_with_prose(lines, i, end):
            break  # prose, a caption, the next section: the table is over
        rows += found_rows
        i = end
    return (rows, i) if any(row.header is not None for row in rows[:_PROBE_ROWS]) else None


def _starts_with_prose(lines: list[_Line], start: int, end: int) -> bool:
    """A group whose first line has no indent while a later one has: prose or a caption, then
    (without a blank line) something indented."""
    first = lines[start].text[:1] not in " \t"
    return first and any(lines[k].text[:1] in " \t" for k in range(start + 1, end))


def _group_rows(lines: list[_Line], cells: list[_Cell], end: int, header: _Header) -> list[_Row]:
    return [
        row
        for chunk in _chunks(cells, header.size)
        if (row := _cell_row(lines, chunk, end, header)) is not None
    ]


def _chunks(cells: list[_Cell], size: int) -> list[list[_Cell]]:
    """A group's cells as rows: one row, or several of the header's width when the rows were not
    parted by blank lines."""
    if not cells:
        return []
    if len(cells) > size and len(cells) % size == 0:
        return [cells[k : k + size] for k in range(0, len(cells), size)]
    return [cells] if len(cells) <= _CELL_ROW_MAX else []


def _cell_row(lines: list[_Line], cells: list[_Cell], end: int, header: _Header) -> _Row | None:
    texts = ["\n".join(cell.fragments) for cell in cells]
    id_cells = [k for k, text in enumerate(texts) if _ID_CELL.fullmatch(text)]
    if not id_cells:
        return None
    line = lines[cells[id_cells[0]].line]
    number = _START.search(line.text)
    if number is None:
        return None  # "NCT" alone on its line, the digits below: read from the text as a whole
    return _Row(
        kind="\n",
        offset=line.offset + number.start(),
        cells=[list(cell.fragments) for cell in cells],
        starts=(),
        borders=(False, False),
        id_cell=id_cells[0],
        end=end,
        header=header if len(cells) == header.size else None,
    )


def _rows(lines: list[_Line]) -> Iterator[_Row]:
    """Every table row of the text, each with the header in effect above it."""
    header: _Header | None = None
    csv_width: int | None = None  # the width of the last CSV row, for the next one's sake
    # How many lines with text there are from each line to the next that holds an NCT number:
    # a one-cell-per-line header is looked for only where a row could follow it.
    ahead = [0] * len(lines)
    to_next = len(lines)
    for k in range(len(lines) - 1, -1, -1):
        text = lines[k].text
        to_next = 0 if _START.search(text) else to_next + 1 if text.strip() else to_next
        ahead[k] = to_next
    i = 0
    while i < len(lines):
        text = lines[i].text
        if not text.strip() or _RULE.fullmatch(text):
            i += 1
            continue
        if (i == 0 or not lines[i - 1].text.strip()) and ahead[i] <= _HEADER_REACH:
            table = _table_of_cells(lines, i)
            if table is not None:
                rows, i = table
                yield from rows
                header = None
                continue
        row = _row(lines, i, header, csv_width)
        if row is None:
            # A new header, or a line that ends the table above (prose, a caption).
            header = _header(text)
            csv_width = header.size if header is not None and header.kind in ",;" else None
            i += 1
            continue
        csv_width = len(row.cells) if row.kind in ",;" else None
        yield row
        i = row.end


# --- putting it together ------------------------------------------------------------------------


def read_import(text: str) -> ImportResult:
    """Every NCT number in ``text``, once each in order of first appearance, with the status and
    title printed on its table row (see the module's docstring); and what was skipped, and why.

    Never raises for what the text contains.
    """
    gather = _Gather()
    _read_into(gather, text, 0)
    return gather.result()


def _read_into(gather: _Gather, text: str, lines_before: int) -> None:
    """Gather what :func:`read_import` finds in a text that follows ``lines_before`` lines of
    the same file (its line numbers counted from there): a chunk of it, or the whole."""
    text = text.replace("\r\n", "\n").translate(_PREPARE)
    lines = _lines(text)
    found: dict[int, tuple[str, _Printed | None]] = {
        offset: (digits, None) for offset, digits in _numbers(text)
    }
    for row in _rows(lines):
        cell = row.cell(row.id_cell)
        start = _START.search(cell)
        assert start is not None  # _ID_CELL matched it
        digits = _read_number(cell, start.end())
        # The row's reading wins when it makes a number: the text around it may not (a column
        # of digits beside a wrapped id, a cell continued two lines down).
        if len(digits) == ID_DIGITS or row.offset not in found:
            found[row.offset] = (digits, _printed(row) if len(digits) == ID_DIGITS else None)

    line_starts = [line.offset for line in lines]
    for offset in sorted(found):
        digits, printed = found[offset]
        line = lines_before + bisect.bisect_right(line_starts, offset)
        problem = nct_id_problem(f"NCT{digits}") if len(digits) == ID_DIGITS else None
        if problem is not None:
            # 8 digits, yet refused by the registry (NCT00000000, the placeholder papers print).
            gather.skip(Skipped(f"NCT{digits}", problem, line))
        elif len(digits) == ID_DIGITS:
            gather.add(
                f"NCT{digits}",
                line,
                _NOTHING_PRINTED
                if printed is None
                else (printed.status, printed.status_text, printed.title),
            )
        else:
            noun = "digit" if len(digits) == 1 else "digits"
            gather.skip(Skipped(f"NCT{digits}", f"{len(digits)} {noun}", line))


CHUNK_CHARS = 1 << 20
"""How much text :func:`read_import_pieces` reads at once: memory stays flat in the size of
the text (an 89 MB file is read a megabyte at a time)."""
CHUNK_LINES = 8192
"""How many lines it reads at once, at most: reading holds a few hundred bytes a line and
an NCT number, so that a megabyte of a bare list of ids (87,000 of them) held 70 MiB while
it was read; 8,192 lines of one, 7 MiB. A review's tables are far shorter."""


def read_import_pieces(
    pieces: Iterable[str], *, chunk_chars: int = CHUNK_CHARS, chunk_lines: int = CHUNK_LINES
) -> ImportResult:
    """:func:`read_import` over a text given in pieces (a file read a block at a time), holding
    about ``chunk_chars`` of it (or ``chunk_lines`` lines, if fewer) at once, whatever its size.

    The text is read in chunks cut at a blank line where the chunk has one in its second half
    (so a table row, with its wrapped cells, stays whole), else at a line end; a line longer
    than a chunk is cut where it reaches the chunk's size. Results are merged as one reading
    would: each trial once, at its first line, with the first status and title printed for it.
    What is held besides the chunk grows with the trials found, not with the text.
    """
    gather = _Gather()
    lines_before = 0

    def read(chunk: str) -> None:
        nonlocal lines_before
        # Line numbers counted from the file's start as the chunk is read, into the one
        # gathering: each trial is kept once, with no result made per chunk and merged.
        _read_into(gather, chunk, lines_before)
        lines_before += chunk.replace("\r\n", "\n").translate(_PREPARE).count("\n")

    buffer = ""
    for piece in pieces:
        buffer += piece
        while (size := _chunk_size(buffer, chunk_chars, chunk_lines)) is not None:
            cut = _cut(buffer, size)
            read(buffer[:cut])
            buffer = buffer[cut:]
    if buffer or not gather.ids:
        read(buffer)
    return gather.result()


def _chunk_size(text: str, chars: int, lines: int) -> int | None:
    """The size of the chunk to cut from the start of ``text``: ``chars``, or less where its
    first ``lines`` lines end sooner; None while ``text`` holds less than a chunk."""
    end = -1
    for _ in range(lines):
        end = text.find("\n", end + 1, chars)
        if end < 0:
            return chars if len(text) >= chars else None
    return end + 1


def _cut(text: str, size: int) -> int:
    """Where to end a chunk of about ``size`` characters (see :func:`read_import_pieces`)."""
    blank = text.rfind("\n\n", size // 2, size)
    if blank >= 0:
        return blank + 2
    end = text.rfind("\n", 0, size)
    return end + 1 if end >= 0 else size

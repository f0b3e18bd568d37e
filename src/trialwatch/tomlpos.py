"""Where each key of a TOML file is written, and where each setting came from. No I/O.

``tomllib`` parses the settings file but forgets positions; a settings problem should still
name the line and column to fix (``config/trialwatch.toml, line 3, column 12``) or the
environment variable that set the value. :class:`Origins` records, for each location as pydantic
reports it (``("watchlist", "0", "label")``), whether the file or a variable gave it, and
:func:`key_positions` scans the text for where each key is written. Not a TOML parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Origins", "Pos", "and_list", "key_positions"]


def and_list(items: Sequence[str], word: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


@dataclass(frozen=True)
class Pos:
    """Where a key is written: its line, and the columns of the key and of its value."""

    line: int
    key_col: int
    value_col: int


class Origins:
    """Where each value came from: the file (at a line and column) or an environment variable.

    Keys are locations as pydantic reports them, as strings: ``("watchlist", "0", "label")``.
    """

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self._positions = key_positions(text)
        self._sources: dict[tuple[str, ...], str | None] = {}  # None: the file; else a variable

    def record(self, value: Any, loc: tuple[str, ...], variable: str | None) -> None:
        """``value`` at ``loc`` came from ``variable`` (None: the file); replaces what was."""
        for known in [k for k in self._sources if len(k) > len(loc) and k[: len(loc)] == loc]:
            del self._sources[known]  # e.g. a list from the file replaced by one from the env
        self._record(value, loc, variable)

    def _record(self, value: Any, loc: tuple[str, ...], variable: str | None) -> None:
        self._sources[loc] = variable
        if isinstance(value, dict):
            for key, sub in value.items():
                self._record(sub, (*loc, str(key)), variable)
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                self._record(sub, (*loc, str(i)), variable)

    def is_set(self, loc: tuple[str, ...]) -> bool:
        """Whether the file or the environment gave ``loc`` a value (else it is a default)."""
        return loc in self._sources

    def variable(self, loc: tuple[str, ...]) -> str | None:
        """The environment variable that set ``loc``; None if the file did, or nothing did."""
        for i in range(len(loc), -1, -1):
            if loc[:i] in self._sources:
                return self._sources[loc[:i]]
        return None

    def where(self, loc: tuple[str, ...], *, at_key: bool = False) -> str:
        """``path, line 3, column 12``, ``environment variable NAME``, or ``defaults``.

        The column is the value's, or the key's with ``at_key`` (for a key that is not allowed).
        """
        if not any(loc[:i] in self._sources for i in range(len(loc), -1, -1)):
            return "defaults"
        variable = self.variable(loc)
        if variable is not None:
            return f"environment variable {variable}"
        pos = self.position(loc, at_key=at_key)
        return str(self.path) if pos is None else f"{self.path}, {pos}"

    def blame(self, loc: tuple[str, ...], fields: Sequence[tuple[str, ...]]) -> str:
        """Where the values of ``fields`` that were set came from, together; else ``where(loc)``.

        ``path, line 3, column 12``, ``path, lines 2 and 3``, ``environment variables A and B``,
        or a file part and a variables part joined by "and".
        """
        given = [f for f in fields if self.is_set(f)]
        if not given:
            return self.where(loc)
        variables = sorted({v for f in given if (v := self.variable(f)) is not None})
        places = sorted(
            {p for f in given if self.variable(f) is None and (p := self._locate(f)) is not None}
        )
        lines = sorted({line for line, _ in places})
        parts = []
        if len(places) == 1:
            parts.append(f"{self.path}, line {places[0][0]}, column {places[0][1]}")
        elif len(lines) == 1:
            parts.append(f"{self.path}, line {lines[0]}")
        elif places:
            parts.append(f"{self.path}, lines {and_list([str(line) for line in lines])}")
        elif len(variables) < len(given):
            parts.append(str(self.path))
        if variables:
            noun = "environment variable" if len(variables) == 1 else "environment variables"
            parts.append(f"{noun} {and_list(variables)}")
        return " and ".join(parts)

    def position(self, loc: tuple[str, ...], *, at_key: bool = False) -> str | None:
        """``line 3, column 12`` of ``loc`` in the file, else of the nearest enclosing key."""
        found = self._locate(loc, at_key=at_key)
        return None if found is None else f"line {found[0]}, column {found[1]}"

    def _locate(self, loc: tuple[str, ...], *, at_key: bool = False) -> tuple[int, int] | None:
        for i in range(len(loc), 0, -1):
            pos = self._positions.get(loc[:i])
            if pos is not None:
                return pos.line, pos.key_col if at_key and i == len(loc) else pos.value_col
        return None


def key_positions(text: str) -> dict[tuple[str, ...], Pos]:
    """Where each key and table header is written, keyed like pydantic's error locations.

    Not a TOML parser (tomllib has parsed the file by now): a scan that follows table headers,
    arrays of tables (the third ``[[watchlist]]`` is ``("watchlist", "2")``) and ``key =``
    lines, and skips strings, comments and values that span lines. Keys inside inline tables or
    multi-line arrays are not located; their errors point at the enclosing key.
    """
    positions: dict[tuple[str, ...], Pos] = {}
    table: tuple[str, ...] = ()
    arrays: dict[tuple[str, ...], int] = {}  # array-of-tables name -> entries seen so far
    state = _ScanState()
    for number, line in enumerate(text.splitlines(), 1):
        start = 0
        if state.multiline is None and state.depth == 0:
            j = _skip_blanks(line, 0)
            header = 2 if line.startswith("[[", j) else 1 if line.startswith("[", j) else 0
            parsed = _parse_key(line, j + header)
            if header and parsed:
                name = parsed[0]
                if header == 2:
                    arrays[name] = arrays.get(name, 0) + 1
                table = _with_indexes(name, arrays)
                positions[table] = Pos(number, j + 1, j + 1)
                continue  # a header line holds nothing else but a comment
            if parsed and line.startswith("=", parsed[1]):
                start = _skip_blanks(line, parsed[1] + 1)
                positions[(*table, *parsed[0])] = Pos(number, j + 1, start + 1)
        state.scan(line, start)
    return positions


def _skip_blanks(line: str, i: int) -> int:
    while i < len(line) and line[i] in " \t":
        i += 1
    return i


def _with_indexes(name: tuple[str, ...], arrays: Mapping[tuple[str, ...], int]) -> tuple[str, ...]:
    """``("watchlist",)`` -> ``("watchlist", "2")`` when it is the third ``[[watchlist]]``."""
    out: list[str] = []
    for i, part in enumerate(name):
        out.append(part)
        if name[: i + 1] in arrays:
            out.append(str(arrays[name[: i + 1]] - 1))
    return tuple(out)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _parse_key(line: str, i: int) -> tuple[tuple[str, ...], int] | None:
    """A (dotted, maybe quoted) key at ``line[i:]``: its parts, and the index after it."""
    parts: list[str] = []
    while True:
        i = _skip_blanks(line, i)
        if line.startswith(('"', "'"), i):
            end = _string_end(line, i)
            if end is None:
                return None
            parts.append(line[i + 1 : end - 1])
            i = end
        else:
            match = _BARE_KEY.match(line, i)
            if match is None:
                return None
            parts.append(match.group())
            i = match.end()
        i = _skip_blanks(line, i)
        if not line.startswith(".", i):
            return tuple(parts), i
        i += 1


def _string_end(line: str, i: int) -> int | None:
    """The index after the one-line string that starts at ``line[i]``; None if unterminated."""
    quote = line[i]
    j = i + 1
    while j < len(line):
        if quote == '"' and line[j] == "\\":
            j += 2
        elif line[j] == quote:
            return j + 1
        else:
            j += 1
    return None


class _ScanState:
    """What a line-by-line scan must remember: an open multi-line string, open brackets."""

    def __init__(self) -> None:
        self.multiline: str | None = None  # the delimiter of an open multi-line string
        self.depth = 0  # open [ and { of a value

    def scan(self, line: str, i: int) -> None:
        while i < len(line):
            if self.multiline is not None:
                if self.multiline == '"""' and line[i] == "\\":
                    i += 2
                elif line.startswith(self.multiline, i):
                    self.multiline = None
                    i += 3
                else:
                    i += 1
                continue
            c = line[i]
            if c == "#":
                return
            if line.startswith(('"""', "'''"), i):
                self.multiline = line[i : i + 3]
                i += 3
            elif c in "\"'":
                i = _string_end(line, i) or len(line)
            else:
                self.depth += (c in "[{") - (c in "]}")
                i += 1

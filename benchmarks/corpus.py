"""The benchmark's registry: studies made from the real records, kept as pre-serialized bytes.

Every study is one of the real records in ``tests/data/records`` (or one of the 13 stand-ins in
``tests/data/selinexor``) with its own NCT id (``NCT9xxxxxxx``: no real study has one), its
titles and organisation id a little different, all its dates moved back by up to 400 days, its
enrollment nudged by up to 10 %, and one of three site lists (as is, the last site dropped, the
first site renamed). Real records are drawn 8 times as often as the stand-ins, which are smaller
invented records, so that a study served with the client's ``fields`` weighs what a real one does
(about 10 KB).

A record is serialized once per *shape* (template and site list) and ``fields`` projection, with
*holes* where a study's own values go; a study's bytes are those segments joined with its own
values (under 1 KB per study), made once per projection and cached, so a page is a join of cached
bytes: no ``json.dumps`` on the request path. The cache holds what was served (about 1 GB for
100,000 studies with the client's ``fields``). A change (:meth:`Registry.publish`) rewrites a
study's values and drops its cached bytes: a status moves on, or the primary completion date
slips six months, and the last-update date becomes the day.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REAL_RECORDS = ROOT / "tests" / "data" / "records"
STAND_IN_RECORDS = ROOT / "tests" / "data" / "selinexor"
REAL_WEIGHT = 8
FIRST_ID = 90_000_000
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"
MAX_SHIFT_DAYS = 400

_RECORD_FILE = re.compile(r"NCT\d{8}\.json")
_HOLE = re.compile(rb'"@@H(\d+)@@"')

# Where a study's own values go. Index = hole number.
HOLES: tuple[tuple[str, ...], ...] = (
    ("protocolSection", "identificationModule", "nctId"),
    ("protocolSection", "identificationModule", "briefTitle"),
    ("protocolSection", "identificationModule", "officialTitle"),
    ("protocolSection", "identificationModule", "orgStudyIdInfo", "id"),
    ("protocolSection", "statusModule", "overallStatus"),
    ("protocolSection", "statusModule", "statusVerifiedDate"),
    ("protocolSection", "statusModule", "startDateStruct", "date"),
    ("protocolSection", "statusModule", "primaryCompletionDateStruct", "date"),
    ("protocolSection", "statusModule", "completionDateStruct", "date"),
    ("protocolSection", "statusModule", "studyFirstSubmitDate"),
    ("protocolSection", "statusModule", "studyFirstPostDateStruct", "date"),
    ("protocolSection", "statusModule", "lastUpdateSubmitDate"),
    ("protocolSection", "statusModule", "lastUpdatePostDateStruct", "date"),
    ("protocolSection", "designModule", "enrollmentInfo", "count"),
)
NCT, BRIEF, OFFICIAL, ORG_ID, STATUS = 0, 1, 2, 3, 4
PRIMARY_COMPLETION, LAST_UPDATE, ENROLLMENT = 7, 12, 13
DATES = (5, 6, 7, 8, 9, 10, 11, 12)

# A real change, the kind a user wants to hear about: an active study completes (or starts
# recruiting); any other has its primary completion slip six months.
_NEXT_STATUS = {
    "RECRUITING": "COMPLETED",
    "ACTIVE_NOT_RECRUITING": "COMPLETED",
    "ENROLLING_BY_INVITATION": "COMPLETED",
    "NOT_YET_RECRUITING": "RECRUITING",
}
_TITLE_TAILS = ("", "", " (Extension Cohort)", " - Long-term Follow-up", " in Adults")


def default_data_timestamp() -> str:
    """9 a.m. three days ago: the scenarios' two refreshes (a day each) end by today, so a
    trialwatch that compares CT.gov's dates with its clock sees nothing from the future."""
    return (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT09:00:06")


def nct_id(index: int) -> str:
    """The NCT id of study ``index`` (watched studies are 0..N-1)."""
    return f"NCT{FIRST_ID + index:08d}"


def index_of(nct: str) -> int | None:
    number = int(nct[3:]) - FIRST_ID
    return number if number >= 0 else None


def load_templates() -> tuple[list[dict[str, Any]], list[int]]:
    """The real records and the stand-ins, and how often each is drawn (its weight)."""
    real = _load(REAL_RECORDS)
    stand_ins = _load(STAND_IN_RECORDS)
    if not real:
        raise FileNotFoundError(f"no NCT*.json records in {REAL_RECORDS}")
    return real + stand_ins, [REAL_WEIGHT] * len(real) + [1] * len(stand_ins)


def mission_records() -> list[dict[str, Any]]:
    """The 13 trials of the Selinexor review (``tests/data/selinexor``), as records."""
    return _load(STAND_IN_RECORDS)


def _load(folder: Path) -> list[dict[str, Any]]:
    # Dated variants (NCT05923112.versionHolder-...) are older versions of a study: skipped.
    files = sorted(p for p in folder.glob("NCT*.json") if _RECORD_FILE.fullmatch(p.name))
    return [json.loads(p.read_text(encoding="utf-8")) for p in files]


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def shift_date(value: str, days: int) -> str:
    """``value`` (``yyyy``, ``yyyy-MM`` or ``yyyy-MM-dd``) moved back ``days`` (forward if < 0)."""
    parts = value.split("-")
    if len(parts) == 3:
        return (date.fromisoformat(value) - timedelta(days=days)).isoformat()
    if len(parts) == 2:
        months = int(parts[0]) * 12 + int(parts[1]) - 1 - round(days / 30.44)
        return f"{months // 12:04d}-{months % 12 + 1:02d}"
    return f"{int(value) - round(days / 365.25):04d}"


def next_day(timestamp: str) -> str:
    moved = datetime.strptime(timestamp, TIMESTAMP_FORMAT) + timedelta(days=1)
    return moved.strftime(TIMESTAMP_FORMAT)


class UnknownField(ValueError):
    """A ``fields`` item the stand-in cannot project (the real API answers 400 too)."""


Trie = dict[str, "Trie | None"]


class Fields:
    """Resolves ``fields`` (area, piece, field or dotted names) to paths in a record.

    Names are taken from the records themselves: ``NCTId``; sections (``ProtocolSection``,
    ``HasResults``); modules (``StatusModule``); the keys of modules with ``Struct`` dropped
    (``OverallStatus``, ``LastUpdatePostDate``), lists' also in the singular (``Phase``,
    ``NCTIdAlias``), protocolSection's winning a clash; a module key's own keys run together
    (``LeadSponsorName``); or a dotted path (``protocolSection.statusModule.overallStatus``).
    Case does not matter except in dotted paths. Keys inside lists are not pieces here.
    """

    def __init__(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        names: dict[str, tuple[str, ...]] = {"nctid": HOLES[NCT]}
        # protocolSection first: its pieces win over derivedSection's of the same name.
        for section in ["protocolSection", *sorted({k for r in records for k in r})]:
            for record in records:
                body = record.get(section)
                names.setdefault(section.lower(), (section,))
                if not isinstance(body, dict):
                    continue
                for module, content in body.items():
                    names.setdefault(module.lower(), (section, module))
                    if not isinstance(content, dict):
                        continue
                    for key, value in content.items():
                        for piece in _piece_names(key):
                            names.setdefault(piece, (section, module, key))
                        if isinstance(value, dict):  # leadSponsor.name: LeadSponsorName
                            for sub in value:
                                names.setdefault(f"{key}{sub}".lower(), (section, module, key, sub))
        self._names = names
        self._sections = {path[0] for path in names.values()}
        self._cache: dict[str, tuple[tuple[tuple[str, ...], ...], Trie] | None] = {}

    def resolve(self, value: str | None) -> tuple[tuple[tuple[str, ...], ...], Trie] | None:
        """``(key, trie)`` for a ``fields`` value; None for the whole record."""
        if value is None:
            return None
        if value in self._cache:
            return self._cache[value]
        paths: set[tuple[str, ...]] = set()
        for raw in re.split(r"[,|]", value):
            item = raw.strip()
            if "." in item:
                path = tuple(item.split("."))
                if path[0] not in self._sections or not all(path):
                    raise UnknownField(f"fields: `{item}` is unknown")
            elif item.lower() in self._names:
                path = self._names[item.lower()]
            else:
                raise UnknownField(f"fields: `{item}` is unknown or not supported by the stand-in")
            paths.add(path)
        key = tuple(sorted(paths))
        resolved = (key, _trie(key))
        self._cache[value] = resolved
        return resolved


def _piece_names(key: str) -> list[str]:
    """``lastUpdatePostDateStruct`` is piece ``LastUpdatePostDate``; a list's piece is singular
    (``phases``: ``Phase``, ``nctIdAliases``: ``NCTIdAlias``)."""
    name = (key.removesuffix("Struct") or key).lower()
    names = [name]
    if name.endswith("es"):
        names.append(name[:-2])
    if name.endswith("s"):
        names.append(name[:-1])
    return names


def _trie(paths: Sequence[tuple[str, ...]]) -> Trie:
    root: Trie = {}
    for path in sorted(paths, key=len):
        node: Trie | None = root
        for part in path[:-1]:
            assert node is not None
            if part in node and node[part] is None:
                node = None  # an ancestor is asked for whole already
                break
            node = node.setdefault(part, {})
        if node is not None:
            node[path[-1]] = None
    return root


def _project(value: dict[str, Any], trie: Trie) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in trie:
            continue
        sub = trie[key]
        if sub is None:
            out[key] = item
        elif isinstance(item, dict):
            projected = _project(item, sub)
            if projected:
                out[key] = projected
    return out


@dataclass
class Shape:
    """A template: a real record with holes, serialized lazily per projection."""

    marked: dict[str, Any]
    defaults: list[Any]  # the template's own value per hole; None where it has no such field
    _pieces: dict[Any, tuple[tuple[bytes, ...], tuple[int, ...]]] = field(default_factory=dict)

    def pieces(
        self, projection: tuple[tuple[tuple[str, ...], ...], Trie] | None
    ) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
        """The byte segments between holes, and the hole after each but the last."""
        key = None if projection is None else projection[0]
        cached = self._pieces.get(key)
        if cached is None:
            value = self.marked if projection is None else _project(self.marked, projection[1])
            raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            parts = _HOLE.split(raw)
            cached = (tuple(parts[0::2]), tuple(int(h) for h in parts[1::2]))
            self._pieces[key] = cached
        return cached


def build_shapes(templates: Sequence[dict[str, Any]]) -> list[Shape]:
    """Three shapes per template: sites as they are, the last one dropped, the first renamed."""
    shapes = []
    for template in templates:
        for variant in range(3):
            record = json.loads(json.dumps(template))  # a deep copy
            ident = record["protocolSection"]["identificationModule"]
            ident.pop("nctIdAliases", None)  # an alias belongs to one study only
            locations = (
                record["protocolSection"].get("contactsLocationsModule", {}).get("locations")
            )
            if locations and variant == 1 and len(locations) > 1:
                locations.pop()
            elif locations and variant == 2:
                first = locations[0]
                first["facility"] = f"{first.get('facility', 'Site')} - Satellite Clinic"
            defaults: list[Any] = []
            for number, path in enumerate(HOLES):
                parent = _walk(record, path[:-1])
                if isinstance(parent, dict) and path[-1] in parent:
                    defaults.append(parent[path[-1]])
                    parent[path[-1]] = f"@@H{number}@@"
                else:
                    defaults.append(None)
            shapes.append(Shape(marked=record, defaults=defaults))
    return shapes


def _walk(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


class Registry:
    """``watched + extra`` synthetic studies (indices 0..watched-1 are the watched ones).

    Not thread-safe: the stand-in serializes access with one lock.
    """

    def __init__(
        self,
        watched: int,
        extra: int = 0,
        *,
        seed: int = 1,
        data_timestamp: str | None = None,
        mission: Sequence[dict[str, Any]] = (),
    ) -> None:
        templates, weights = load_templates()
        self.shapes = build_shapes(templates)
        self.fields = Fields(templates)
        self.watched = watched
        self.total = watched + extra
        self.data_timestamp = data_timestamp or default_data_timestamp()
        self.api_version = "2.0.5"
        self._rng = random.Random(seed)
        order = [template for template, weight in enumerate(weights) for _ in range(weight)]
        self._rng.shuffle(order)
        first = datetime.strptime(self.data_timestamp, TIMESTAMP_FORMAT)
        last_day = (first - timedelta(days=1)).date()
        self.shape_of: list[int] = []
        self.values: list[list[bytes]] = []
        self.last_update: list[str] = []  # per study, for filter.advanced
        for i in range(self.total):
            template = order[i % len(order)]
            shape_index = template * 3 + (i // len(order)) % 3
            self.shape_of.append(shape_index)
            values, updated = _perturb(self.shapes[shape_index], i, seed, last_day)
            self.values.append(values)
            self.last_update.append(updated)
        self.changed: set[int] = set()
        self._served: dict[Any, list[bytes | None]] = {}  # projection key -> bytes per study
        # Real records served under their own ids after the synthetic studies (the acceptance
        # run's 13 trials of the Selinexor review), parsed and edited by hand.
        self.mission = [json.loads(json.dumps(record)) for record in mission]
        self.mission_index: dict[str, int] = {}
        for offset, record in enumerate(self.mission):
            status = record["protocolSection"]["statusModule"]
            self.mission_index[record["protocolSection"]["identificationModule"]["nctId"]] = (
                self.total + offset
            )
            self.last_update.append(status.get("lastUpdatePostDateStruct", {}).get("date", ""))

    @property
    def served_total(self) -> int:
        """Every study served: the synthetic ones and the mission's."""
        return self.total + len(self.mission)

    def study_bytes(self, index: int, projection: Any) -> bytes:
        """Study ``index`` as JSON, projected (see :meth:`Fields.resolve`; None: whole)."""
        if index >= self.total:
            record = self.mission[index - self.total]
            return encode(record if projection is None else _project(record, projection[1]))
        key = None if projection is None else projection[0]
        cache = self._served.get(key)
        if cache is None:
            cache = self._served[key] = [None] * self.total
        body = cache[index]
        if body is None:
            segments, holes = self.shapes[self.shape_of[index]].pieces(projection)
            values = self.values[index]
            parts = [segments[0]]
            for hole, segment in zip(holes, segments[1:], strict=True):
                parts.append(values[hole])
                parts.append(segment)
            body = cache[index] = b"".join(parts)
        return body

    def lookup(self, ids: Iterable[str]) -> list[int]:
        """Indices of the studies ``ids`` names that exist, in order, without repeats."""
        seen: dict[int, None] = {}
        for nct in ids:
            index = self.mission_index.get(nct)
            if index is not None:
                seen[index] = None
                continue
            index = index_of(nct)
            if index is not None and index < self.total:
                seen[index] = None
        return list(seen)

    def updated_between(self, candidates: Iterable[int], low: str, high: str) -> list[int]:
        updates = self.last_update
        return [i for i in candidates if low <= updates[i] <= high]

    def publish(self, indices: Iterable[int]) -> str:
        """A daily refresh: each study in ``indices`` changes for real, dated the new day."""
        self.data_timestamp = next_day(self.data_timestamp)
        day = self.data_timestamp[:10]
        for index in indices:
            values = self.values[index]
            defaults = self.shapes[self.shape_of[index]].defaults
            status = json.loads(values[STATUS]) if defaults[STATUS] is not None else None
            if status in _NEXT_STATUS:
                values[STATUS] = encode(_NEXT_STATUS[status])
            elif defaults[PRIMARY_COMPLETION] is not None:
                slipped = shift_date(json.loads(values[PRIMARY_COMPLETION]), -183)
                values[PRIMARY_COMPLETION] = encode(slipped)
            else:
                values[ENROLLMENT] = encode(int(json.loads(values[ENROLLMENT] or b"0")) + 10)
            if defaults[LAST_UPDATE] is not None:
                values[LAST_UPDATE] = encode(day)
            self.last_update[index] = day
            self.changed.add(index)
            for cache in self._served.values():
                cache[index] = None
        return day

    def edit_mission(self, nct: str, status: str) -> str:
        """Mission study ``nct`` takes ``status``, dated the day the next :meth:`publish` makes
        (which also moves ``dataTimestamp``); returns its previous status."""
        index = self.mission_index.get(nct)
        if index is None:
            raise ValueError(f"{nct} is not one of the mission's studies")
        module = self.mission[index - self.total]["protocolSection"]["statusModule"]
        before = str(module.get("overallStatus"))
        day = next_day(self.data_timestamp)[:10]
        module["overallStatus"] = status
        module.setdefault("lastUpdatePostDateStruct", {"type": "ACTUAL"})["date"] = day
        self.last_update[index] = day
        return before

    def pick(self, count: int, *, watched: bool) -> list[int]:
        """``count`` studies not changed yet, watched or not, chosen at random (seeded)."""
        pool = range(self.watched) if watched else range(self.watched, self.total)
        fresh = [i for i in pool if i not in self.changed]
        return sorted(self._rng.sample(fresh, min(count, len(fresh))))


def _perturb(shape: Shape, index: int, seed: int, last_day: date) -> tuple[list[bytes], str]:
    rng = random.Random(seed * 1_000_003 + index)
    days = rng.randint(0, MAX_SHIFT_DAYS)
    out: list[bytes] = []
    last_update = ""
    for hole, default in enumerate(shape.defaults):
        if default is None:
            out.append(b"")
        elif hole == NCT:
            out.append(b'"%s"' % nct_id(index).encode())
        elif hole in (BRIEF, OFFICIAL):
            out.append(_encoded(f"{default}{rng.choice(_TITLE_TAILS)}"))
        elif hole == ORG_ID:
            out.append(encode(f"{default}-{index}"))
        elif hole == ENROLLMENT and isinstance(default, int):
            out.append(b"%d" % max(1, round(default * rng.uniform(0.9, 1.1))))
        elif hole in DATES and isinstance(default, str):
            value = _shifted(default, days)
            if hole == LAST_UPDATE:
                value = last_update = min(value, last_day.isoformat())
            out.append(_encoded(value))
        else:
            out.append(encode(default))
    return out, last_update


# Setup of 100,000 studies in seconds rather than a minute: few distinct values, many studies.
@functools.cache
def _shifted(value: str, days: int) -> str:
    return shift_date(value, days)


@functools.cache
def _encoded(value: str) -> bytes:
    return encode(value)


def served_sizes(registry: Registry, projection: Any) -> Iterator[int]:
    for index in range(registry.total):
        yield len(registry.study_bytes(index, projection))

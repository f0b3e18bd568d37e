"""How the ClinicalTrials.gov Data API v2 answers: one set of rules every stand-in of it obeys.

A stand-in of CT.gov is a claim about how CT.gov behaves. This module states that claim once; the
stand-ins are front ends over it:

- ``tests/fakes/ctgov_server.py`` (:class:`FakeCtGov`): parsed records on loopback in the test
  process, with faults injected by tests;
- ``benchmarks/standin.py``: 100,000 pre-serialized studies in a process of its own (it imports
  this file by path: the benchmarks run from a checkout, never from the wheel);
- ``tests/fakes/source.py`` (:class:`FakeSource`): the client's contract in memory, whose searches
  use :func:`parse_query` and :func:`matches` from here.

Why a module under ``tests/fakes`` and not a package of its own: it is test equipment, it must not
ship in trialwatch's wheel, and it imports only the standard library and orjson, so a benchmark
process can load it from the checkout without the test suite's imports.

Each rule cites its source: the spec (``tests/data/ctgov/openapi.json``, the official
``openapi.yaml`` v2.0.5 as JSON; ``tests/test_ctgov_conformance.py`` holds this module to it) or
a behaviour observed by other clients (as collected in the project's notes on the API). Where
both are silent, the rule takes the less kind reading and says so: a client that copes with the
unkind stand-in copes with the real server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

__all__ = [
    "API_ROOT",
    "DEFAULT_PAGE_SIZE",
    "MAX_HEAD_BYTES",
    "MAX_PAGE_SIZE",
    "NCT_ID_PATTERN",
    "QUERY_AREAS",
    "STATUSES",
    "STUDIES_PARAMS",
    "STUDY_PARAMS",
    "Answer",
    "BadRequest",
    "StudiesQuery",
    "check_params",
    "essie_refusal",
    "head_refusal",
    "json_answer",
    "matches",
    "parse_id",
    "parse_query",
    "parse_studies_query",
    "split_list",
    "studies_page",
    "study_texts",
    "text_answer",
    "throttled",
    "version_answer",
]

API_ROOT = "/api/v2"
# Spec, /studies pageSize: "default: 10"; "It will be coerced down to 1,000, if greater".
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
# Observed limits of common front servers (Apache's 8,190-byte request line, nginx's 8 KB header
# buffers, CloudFront): CT.gov's own limit is not documented. The less kind reading: 8 KB for
# the request line (414 URI Too Long) and 8 KB for the whole head (431 Request Header Fields Too
# Large); real proxies also answer a plain 400 here, which the client must treat alike.
MAX_HEAD_BYTES = 8192

# Spec, /studies parameters (the conformance test checks this list against it). Anything else
# is refused with 400 "`query.recrs` is unknown parameter" (observed, as quoted).
STUDIES_PARAMS = frozenset(
    {
        "format",
        "markupFormat",
        "query.cond",
        "query.term",
        "query.locn",
        "query.titles",
        "query.intr",
        "query.outc",
        "query.spons",
        "query.lead",
        "query.id",
        "query.patient",
        "filter.overallStatus",
        "filter.geo",
        "filter.ids",
        "filter.advanced",
        "filter.synonyms",
        "postFilter.overallStatus",
        "postFilter.geo",
        "postFilter.ids",
        "postFilter.advanced",
        "postFilter.synonyms",
        "aggFilters",
        "geoDecay",
        "fields",
        "sort",
        "countTotal",
        "pageSize",
        "pageToken",
    }
)
# Spec, /studies/{nctId} parameters (besides the path's nctId).
STUDY_PARAMS = frozenset({"format", "markupFormat", "fields"})
# Spec, pageToken: "Set it to a nextPageToken value returned with the previous page"; a token is
# bound to its query, except for these, which may change between pages ("It does not have to be
# the same for every page", "ignored for the subsequent pages").
PAGING_PARAMS = frozenset({"pageToken", "pageSize", "countTotal"})
# Spec, filter.ids / postFilter.ids / {nctId}: pattern "^[Nn][Cc][Tt]0*[1-9]\d{0,7}$". The server
# runs on the JVM, where \d is ASCII only: full-width digits do not match (observed: they break
# the batch). Python's \d is Unicode, hence [0-9].
NCT_ID_PATTERN = re.compile(r"[Nn][Cc][Tt]0*[1-9][0-9]{0,7}")
_SPEC_ID_PATTERN = r"^[Nn][Cc][Tt]0*[1-9]\d{0,7}$"
# Spec, filter.overallStatus enum (Status).
STATUSES = frozenset(
    {
        "ACTIVE_NOT_RECRUITING",
        "COMPLETED",
        "ENROLLING_BY_INVITATION",
        "NOT_YET_RECRUITING",
        "RECRUITING",
        "SUSPENDED",
        "TERMINATED",
        "WITHDRAWN",
        "AVAILABLE",
        "NO_LONGER_AVAILABLE",
        "TEMPORARILY_NOT_AVAILABLE",
        "APPROVED_FOR_MARKETING",
        "WITHHELD",
        "UNKNOWN",
    }
)
_PS = "protocolSection"
_ID = (_PS, "identificationModule")
_INTERVENTIONS = (_PS, "armsInterventionsModule", "interventions")
_SPONSORS = (_PS, "sponsorCollaboratorsModule")
# What each searched query.* area looks at (paths into a study; lists are walked). The spec names
# the areas ("ConditionSearch Area", "BasicSearch Area", ...) without listing their fields; these
# are the obvious ones, fewer than Essie's (the less kind reading: fewer hits, never more).
QUERY_AREAS: dict[str, tuple[tuple[str, ...], ...]] = {
    "query.term": (
        (*_ID, "nctId"),
        (*_ID, "briefTitle"),
        (*_ID, "officialTitle"),
        (*_ID, "acronym"),
        (_PS, "conditionsModule", "conditions"),
        (_PS, "conditionsModule", "keywords"),
        (*_INTERVENTIONS, "name"),
        (*_INTERVENTIONS, "otherNames"),
        (*_SPONSORS, "leadSponsor", "name"),
        (_PS, "descriptionModule", "briefSummary"),
    ),
    "query.intr": (
        (*_INTERVENTIONS, "name"),
        (*_INTERVENTIONS, "otherNames"),
        (_PS, "armsInterventionsModule", "armGroups", "interventionNames"),
    ),
    "query.cond": (
        (_PS, "conditionsModule", "conditions"),
        (_PS, "conditionsModule", "keywords"),
        (*_ID, "briefTitle"),
        (*_ID, "officialTitle"),
    ),
    "query.spons": (
        (*_SPONSORS, "leadSponsor", "name"),
        (*_SPONSORS, "collaborators", "name"),
    ),
}
# Free-text areas are Essie expressions (spec: "query in Essie expression syntax"). The error's
# area label: "Other terms" for query.term is observed ("Error parsing query in Other terms:
# mismatched input '['..."); the others are the website's labels for those boxes (a guess).
_AREA_LABELS = {
    "query.term": "Other terms",
    "query.cond": "Condition/disease",
    "query.intr": "Intervention/treatment",
    "query.spons": "Sponsor/Collaborator",
    "query.titles": "Title/Acronym",
    "query.outc": "Outcome measure",
    "query.lead": "Lead sponsor",
    "query.locn": "Location terms",
    "query.id": "Study IDs",
    "query.patient": "Patient search",
}
# Essie's bracketed operators. The spec's examples show AREA[...] and RANGE[...] (filter.advanced);
# Essie has more, but the less kind reading accepts only these two: any other bracket is refused.
_ESSIE_OPERATOR = re.compile(r"\b(?:AREA|RANGE)\[[^\[\]]*\]")
_ADVANCED_RANGE = re.compile(
    r"\s*AREA\[LastUpdatePostDate\]\s*RANGE\[\s*([^,\]]+?)\s*,\s*([^\]]+?)\s*\]\s*", re.IGNORECASE
)
_SPLIT = re.compile(r"[,|]")
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json; charset=utf-8"


# -- answers --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer: status, body, content type, extra headers."""

    status: int
    body: bytes = b""
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = ()


class BadRequest(Exception):
    """A 400 whose text/plain body is this message (spec: 400 answers are ``text/plain``)."""


def text_answer(status: int, message: str, *headers: tuple[str, str]) -> Answer:
    return Answer(status, message.encode("utf-8"), _TEXT, headers)


def json_answer(value: Any, status: int = 200) -> Answer:
    return Answer(status, orjson.dumps(value), _JSON)


def version_answer(api_version: str, data_timestamp: str | None) -> Answer:
    """``/version``. Spec, schema Version: ``required: [apiVersion]`` only, so an answer without
    ``dataTimestamp`` is valid (``data_timestamp=None`` serves one)."""
    body: dict[str, str] = {"apiVersion": api_version}
    if data_timestamp is not None:
        body["dataTimestamp"] = data_timestamp
    return json_answer(body)


def throttled(status: int = 429, retry_after: str | None = None) -> Answer:
    """A throttling answer. Observed: "no rate-limit headers were seen", so by default there is no
    ``Retry-After`` (the less kind reading); HTTP allows one on 429 and 503 (RFC 9110 10.2.3)."""
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    reason = "Too Many Requests" if status == 429 else "Service Unavailable"
    return text_answer(status, f"{status} {reason}", *headers)


def head_refusal(request_line: int, head: int) -> Answer | None:
    """The answer to a request whose request line is ``request_line`` bytes and whose whole head
    (request line and header lines) is ``head`` bytes, when it is too large; None when it fits.
    Source: see :data:`MAX_HEAD_BYTES`."""
    if request_line > MAX_HEAD_BYTES:
        return text_answer(414, "URI Too Long", ("Connection", "close"))
    if head > MAX_HEAD_BYTES:
        return text_answer(431, "Request Header Fields Too Large", ("Connection", "close"))
    return None


# -- parameters -----------------------------------------------------------------------------------


def check_params(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    """Observed: an unknown parameter is refused ("`query.recrs` is unknown parameter")."""
    for name in params:
        if name not in allowed:
            raise BadRequest(f"`{name}` is unknown parameter")


def check_format(params: Mapping[str, str]) -> None:
    # Spec: format json (default) or csv; markupFormat markdown (default) or legacy. The stand-ins
    # serve json only and refuse csv plainly (trialwatch never asks for it).
    fmt = params.get("format", "json")
    if fmt != "json":
        raise BadRequest(f"format `{fmt}` is not served by this stand-in (only json)")
    markup = params.get("markupFormat", "markdown")
    if markup not in ("markdown", "legacy"):
        raise BadRequest(f"markupFormat must be one of [markdown, legacy], got `{markup}`")


def parse_id(raw: str, name: str = "nctId") -> str:
    """An id as the server reads it, or :class:`BadRequest`.

    Spec: the pattern :data:`NCT_ID_PATTERN` (``NCT00000000``, full-width digits, blanks around
    the id all fail it). The message does not name the id: what the real one says is not known,
    and a client must find the culprit itself (the less kind reading). The spec is silent on how
    ``NCT123`` (valid by the pattern) is looked up; the less kind reading: as written, so it
    finds nothing unless a study has that very id.
    """
    if not NCT_ID_PATTERN.fullmatch(raw):
        raise BadRequest(f"{name}: a value does not match the pattern {_SPEC_ID_PATTERN}")
    return raw.upper()


def parse_ids(value: str, name: str) -> list[str]:
    """Spec, filter.ids: "comma- or pipe-separated list of NCT IDs"; one id that fails the pattern
    refuses the whole request (observed: "break every id in its batch")."""
    return [parse_id(item, name) for item in split_list(value, name)]


def essie_refusal(name: str, value: str) -> None:
    """Observed: a bare ``[`` or ``]`` in a free-text area is refused with 400 ("Error parsing
    query in Other terms: mismatched input '['..."); Essie's own bracketed operators are fine
    (see :data:`_ESSIE_OPERATOR` for which ones this stand-in knows); parentheses group and
    commas mean AND, both accepted."""
    bare = _ESSIE_OPERATOR.sub(" ", value)
    for index, char in enumerate(bare):
        if char in "[]":
            label = _AREA_LABELS.get(name, name)
            raise BadRequest(
                f"Error parsing query in {label}: mismatched input '{char}' expecting "
                f"{{<EOF>, AND, OR, NOT, '(', ')', ','}} (position {index + 1})"
            )


# -- Essie, as far as the stand-ins go ------------------------------------------------------------

Expr = tuple[str, Any]
"""("or", [Expr, ...]) | ("and", [Expr, ...]) | ("not", Expr) | ("term", "lower-cased text")"""

_TOKEN = re.compile(r'\s*(?:(\()|(\))|(,)|"([^"]*)"|([^\s(),"]+))')


def parse_query(name: str, value: str) -> Expr:
    """An Essie expression of a free-text area, as the stand-ins understand it, or
    :class:`BadRequest` (bare brackets, unbalanced parentheses, nothing to search).

    Understood (observed, other clients' live tests): ``OR``; ``AND`` and ``,`` (a comma means
    AND); ``NOT``; parentheses grouping; ``"quoted phrases"``. Consecutive words are one phrase
    (Essie would match them word by word, with stemming and synonyms: the less kind reading
    finds fewer studies, never more). A term matches a text it is a case-insensitive part of.
    """
    essie_refusal(name, value)
    tokens: list[tuple[str, str]] = []
    position = 0
    text = value.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            break
        position = match.end()
        if match.group(1):
            tokens.append(("(", "("))
        elif match.group(2):
            tokens.append((")", ")"))
        elif match.group(3):
            tokens.append(("AND", ","))
        elif match.group(4) is not None:
            tokens.append(("word", match.group(4)))
        else:
            word = match.group(5)
            tokens.append((word, word) if word in ("OR", "AND", "NOT") else ("word", word))
    label = _AREA_LABELS.get(name, name)
    parser = _Parser(tokens, f"{name}: Error parsing query in {label}")
    expr = parser.or_expr()
    if parser.index != len(tokens):
        raise BadRequest(f"{parser.where}: unexpected `{tokens[parser.index][1]}`")
    return expr


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], where: str) -> None:
        self.tokens = tokens
        self.index = 0
        self.where = where

    def _peek(self) -> str | None:
        return self.tokens[self.index][0] if self.index < len(self.tokens) else None

    def or_expr(self) -> Expr:
        parts = [self.and_expr()]
        while self._peek() == "OR":
            self.index += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def and_expr(self) -> Expr:
        parts = [self.unit()]
        # Consecutive words were joined by unit(): what follows a unit here is AND, NOT or "(".
        while self._peek() in ("AND", "NOT", "("):
            if self._peek() == "AND":
                self.index += 1
            parts.append(self.unit())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def unit(self) -> Expr:
        kind = self._peek()
        if kind == "NOT":
            self.index += 1
            return ("not", self.unit())
        if kind == "(":
            self.index += 1
            inner = self.or_expr()
            if self._peek() != ")":
                raise BadRequest(f"{self.where}: missing ')'")
            self.index += 1
            return inner
        words: list[str] = []
        while self._peek() == "word":
            words.append(self.tokens[self.index][1])
            self.index += 1
        phrase = " ".join(" ".join(words).split()).lower()
        if not phrase:
            raise BadRequest(f"{self.where}: the query is empty or incomplete")
        return ("term", phrase)


def matches(expr: Expr, texts: Sequence[str]) -> bool:
    """Whether ``expr`` matches a study whose searched, lower-cased texts are ``texts``."""
    kind, value = expr
    if kind == "term":
        return any(value in text for text in texts)
    if kind == "or":
        return any(matches(part, texts) for part in value)
    if kind == "and":
        return all(matches(part, texts) for part in value)
    return not matches(value, texts)


def study_texts(record: Mapping[str, Any], area: str) -> tuple[str, ...]:
    """The lower-cased texts of ``record`` that the query area ``area`` searches."""
    return tuple(text.lower() for path in QUERY_AREAS[area] for text in _strings(record, path))


def _strings(value: Any, path: tuple[str, ...]) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _strings(item, path)
    elif not path:
        if isinstance(value, str):
            yield value
    elif isinstance(value, dict):
        yield from _strings(value.get(path[0]), path[1:])


# -- /studies -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StudiesQuery:
    """A checked ``/studies`` request."""

    ids: tuple[str, ...] | None  # filter.ids and postFilter.ids, intersected
    statuses: frozenset[str] | None
    ranges: tuple[tuple[str, str], ...]  # LastUpdatePostDate ranges, all must hold
    searches: tuple[tuple[str, Expr], ...]  # query areas: all must match (ANDed)
    matches_nothing: bool  # a query area the front end cannot search was asked
    fields: str | None
    page_size: int
    count_total: bool
    offset: int
    first_page: bool
    digest: str


def parse_studies_query(
    params: Mapping[str, str], *, searchable: Iterable[str] = QUERY_AREAS
) -> StudiesQuery:
    """Check a ``/studies`` request the way the server does; :class:`BadRequest` if it refuses.

    ``searchable``: the query areas the front end can search; another query area is accepted
    when it passes Essie's syntax and then matches nothing (the less kind reading).
    """
    check_params(params, STUDIES_PARAMS)
    check_format(params)
    page_size = _page_size(params.get("pageSize"))
    count_total = _parse_bool("countTotal", params.get("countTotal", "false"))
    ids: list[str] | None = None
    for name in ("filter.ids", "postFilter.ids"):
        if name in params:
            these = parse_ids(params[name], name)
            ids = these if ids is None else [i for i in ids if i in set(these)]
    statuses: set[str] | None = None
    for name in ("filter.overallStatus", "postFilter.overallStatus"):
        if name in params:
            these_statuses = set(split_list(params[name], name))
            unknown = sorted(these_statuses - STATUSES)
            if unknown:
                raise BadRequest(f"{name}: unknown status {unknown[0]!r}")
            statuses = these_statuses if statuses is None else statuses & these_statuses
    ranges = [
        _parse_advanced(params[name])
        for name in ("filter.advanced", "postFilter.advanced")
        if name in params
    ]
    searches: list[tuple[str, Expr]] = []
    wanted_areas = frozenset(searchable)
    matches_nothing = False
    for name in sorted(params):
        if not name.startswith("query."):
            continue
        value = params[name]
        if _ADVANCED_RANGE.fullmatch(value):
            ranges.append(_parse_advanced(value))
            continue
        expr = parse_query(name, value)
        if name in wanted_areas:
            searches.append((name, expr))
        else:
            # An area the front end cannot search matches nothing: fewer hits, never more.
            matches_nothing = True
    digest = _query_digest(params)
    token = params.get("pageToken")
    offset = _parse_token(token, digest) if token is not None else 0
    return StudiesQuery(
        ids=tuple(dict.fromkeys(ids)) if ids is not None else None,
        statuses=frozenset(statuses) if statuses is not None else None,
        ranges=tuple(ranges),
        searches=tuple(searches),
        matches_nothing=matches_nothing,
        fields=params.get("fields"),
        page_size=page_size,
        count_total=count_total,
        offset=offset,
        first_page=token is None,
        digest=digest,
    )


K = TypeVar("K")


def studies_page(
    query: StudiesQuery, matching: Sequence[K], render: Callable[[Sequence[K]], Iterable[bytes]]
) -> bytes:
    """The JSON body of one ``/studies`` page of ``matching`` (every study the query matches,
    in the server's order); ``render`` turns the page's studies into their JSON bytes.

    - Spec, countTotal: ``totalCount`` "with first page"; "ignored for the subsequent pages".
    - Observed (cyanheads/clinicaltrialsgov-mcp-server#98, and the real pages kept with the
      project's notes): **a page filled to pageSize always carries a nextPageToken**, even when
      nothing follows; that token's page is empty and carries none.
    """
    chunk = matching[query.offset : query.offset + query.page_size]
    parts = [b'{"studies":[', b",".join(render(chunk)), b"]"]
    if query.count_total and query.first_page:
        parts.append(b',"totalCount":%d' % len(matching))
    if len(chunk) == query.page_size:
        token = _make_token(query.offset + query.page_size, query.digest)
        parts.append(b',"nextPageToken":' + orjson.dumps(token))
    parts.append(b"}")
    return b"".join(parts)


def in_range(day: str, ranges: Iterable[tuple[str, str]]) -> bool:
    return all(low <= day <= high for low, high in ranges)


def split_list(value: str, name: str) -> list[str]:
    """Spec: list parameters are "comma- or pipe-separated"; an empty item is refused."""
    items = _SPLIT.split(value)
    if not items or any(not item for item in items):
        raise BadRequest(f"{name} must be a non-empty comma- or pipe-separated list")
    return items


def _page_size(value: str | None) -> int:
    # Spec, pageSize: int32, minimum 0, default 10; "If not specified or set to 0, the default
    # value will be used. It will be coerced down to 1,000, if greater than that."
    if value is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        raise BadRequest(f"pageSize: `{value}` is not an integer") from None
    if size < 0:
        raise BadRequest(f"pageSize must be >= 0, got {size}")
    return min(size, MAX_PAGE_SIZE) if size else DEFAULT_PAGE_SIZE


def _parse_bool(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false, got `{value}`")
    return value.lower() == "true"


def _parse_advanced(value: str) -> tuple[str, str]:
    # Spec, filter.advanced: Essie, e.g. AREA[MinimumAge]RANGE[MIN, 16 years]. The stand-ins
    # understand only LastUpdatePostDate ranges (trialwatch's incremental listing) and refuse
    # the rest plainly rather than ignore it.
    essie_refusal("filter.advanced", value)
    match = _ADVANCED_RANGE.fullmatch(value)
    if match is None:
        raise BadRequest(
            "the stand-in understands only filter.advanced=AREA[LastUpdatePostDate]RANGE[from,to]"
        )
    low, high = match.group(1), match.group(2)
    return ("" if low.upper() == "MIN" else low), ("\uffff" if high.upper() == "MAX" else high)


def _query_digest(params: Mapping[str, str]) -> str:
    fixed = sorted((k, v) for k, v in params.items() if k not in PAGING_PARAMS)
    return hashlib.sha256(json.dumps(fixed).encode("utf-8")).hexdigest()[:16]


def _make_token(offset: int, digest: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{digest}".encode()).decode("ascii").rstrip("=")


def _parse_token(token: str, digest: str) -> int:
    # Spec: the token is opaque; the real one is bound to its query. Another query's token is
    # refused (the less kind reading: it could as well be silently wrong).
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        offset_text, token_digest = raw.split(":")
        offset = int(offset_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(f"pageToken `{token}` is invalid") from None
    if token_digest != digest or offset < 0:
        raise BadRequest(f"pageToken `{token}` does not belong to this query")
    return offset

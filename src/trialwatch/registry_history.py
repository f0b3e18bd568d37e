"""CT.gov's record history: every version the registry kept of a record (``trialwatch backfill``).

The website's "History of Changes" tab reads it from an internal interface, not the documented
API (see the project's notes on the CT.gov API, "The registry's record history"):

- ``GET {base}/studies/{id}/history`` -> ``{"changes": [{"version": 0, "date": "2017-11-10",
  "status": "NOT_YET_RECRUITING", "moduleLabels": [...], ...}, ...]}``, oldest first;
- ``GET {base}/studies/{id}/history/{n}`` -> ``{"study": {"protocolSection": ...},
  "studyVersion": n}``, the record as it stood in version ``n``.

Its shape can change without notice, so every answer is checked here, in one place
(:func:`read_version_list`, :func:`read_version`): anything else (an HTML page with a 200, a
missing key, versions out of order) raises :class:`RegistryHistoryError` naming the trial and
what was unexpected, and that trial's backfill stops, closed. Requests go through the
:class:`~trialwatch.ctgov.CtGovClient` given (its pacing, retries and transport).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from trialwatch.exceptions import RegistryHistoryError
from trialwatch.models import RegistryEntry

if TYPE_CHECKING:
    from trialwatch.ctgov import CtGovClient

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _json(nct_id: str, what: str, body: bytes) -> Any:
    head = body[:200].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<")):
        raise RegistryHistoryError(
            f"{nct_id}: the registry's {what} came back as an HTML page, not JSON"
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RegistryHistoryError(f"{nct_id}: the registry's {what} is not valid JSON") from None


def _problem(nct_id: str, what: str, detail: str) -> RegistryHistoryError:
    return RegistryHistoryError(
        f"{nct_id}: the registry's {what} has an unexpected shape: {detail}"
    )


def read_version_list(nct_id: str, body: bytes) -> tuple[RegistryEntry, ...]:
    """The version list of ``/history`` (``{"changes": [...]}``) or of ``?history=true``
    (``{"history": {"changes": [...]}, ...}``), checked: numbers from 0 without gaps, oldest
    first, each dated ``yyyy-MM-dd``, dates never going back.

    Raises RegistryHistoryError for any other shape (nothing is guessed).
    """
    what = "version list"
    data = _json(nct_id, what, body)
    if isinstance(data, dict) and isinstance(data.get("history"), dict):
        data = data["history"]
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        raise _problem(nct_id, what, 'expected an object with a "changes" list')
    entries: list[RegistryEntry] = []
    for i, item in enumerate(data["changes"]):
        if not isinstance(item, dict):
            raise _problem(nct_id, what, f"entry {i} is {type(item).__name__}, not an object")
        version, day, status = item.get("version"), item.get("date"), item.get("status")
        if type(version) is not int or version != i:
            raise _problem(nct_id, what, f"entry {i} has version {version!r}, expected {i}")
        if not isinstance(day, str) or not _DAY.fullmatch(day):
            raise _problem(nct_id, what, f"version {i} has date {day!r}, expected YYYY-MM-DD")
        if entries and day < entries[-1].date:
            raise _problem(nct_id, what, f"version {i} is dated {day}, before version {i - 1}")
        if status is not None and not isinstance(status, str):
            raise _problem(nct_id, what, f"version {i} has status {status!r}")
        labels = item.get("moduleLabels") or []
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise _problem(nct_id, what, f"version {i} has moduleLabels {labels!r}")
        entries.append(RegistryEntry(version, day, status, tuple(labels)))
    if not entries:
        raise _problem(nct_id, what, "it lists no version at all")
    return tuple(entries)


def read_version(nct_id: str, version: int, body: bytes) -> dict[str, Any]:
    """The record of ``/history/{version}`` (``{"study": {...}, "studyVersion": n}``), checked:
    the version asked for, a study with a ``protocolSection`` naming this trial.

    Raises RegistryHistoryError for any other shape.
    """
    what = f"version {version}"
    data = _json(nct_id, what, body)
    if not isinstance(data, dict) or not isinstance(data.get("study"), dict):
        raise _problem(nct_id, what, 'expected an object with a "study" object')
    if data.get("studyVersion") != version:
        raise _problem(nct_id, what, f"studyVersion is {data.get('studyVersion')!r}")
    study: dict[str, Any] = data["study"]
    section = study.get("protocolSection")
    ident = section.get("identificationModule") if isinstance(section, dict) else None
    found = ident.get("nctId") if isinstance(ident, dict) else None
    if not isinstance(found, str):
        raise _problem(nct_id, what, "no protocolSection.identificationModule.nctId")
    aliases = ident.get("nctIdAliases") if isinstance(ident, dict) else None
    if found.upper() != nct_id and nct_id not in (aliases or []):
        raise _problem(nct_id, what, f"it is the record of {found}")
    return study


class RegistryHistory:
    """Reads one trial's record history through ``client`` from ``base_url`` (``/api/int``)."""

    def __init__(self, client: CtGovClient, base_url: str) -> None:
        self._client = client
        self._base = base_url.rstrip("/")

    @property
    def requests_made(self) -> int:
        return self._client.requests_made

    def version_list(self, nct_id: str) -> tuple[RegistryEntry, ...]:
        """Every version the registry kept of ``nct_id``, oldest first (one request)."""
        body = self._client.get_body(f"{self._base}/studies/{nct_id}/history")
        return read_version_list(nct_id, body)

    def version(self, nct_id: str, version: int) -> tuple[dict[str, Any], bytes]:
        """The record as it stood in ``version`` (one request): its study object, and that
        object's JSON bytes as the registry gave it (kept as a live record is)."""
        body = self._client.get_body(f"{self._base}/studies/{nct_id}/history/{version}")
        study = read_version(nct_id, version, body)
        return study, orjson.dumps(study)

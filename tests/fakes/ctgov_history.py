"""The registry's record history, as the stand-in serves it (``/api/int/studies/...``).

Each behaviour is a claim about CT.gov, from the project's notes on the API
(``ctgov/README.md``, section "The registry's record history"), which records what the
website's "History of Changes" tab reads and what public clients of it (e.g. the R package
cthist) rely on:

- ``GET /api/int/studies/{id}?history=true`` -> ``{"study": {...current...}, "history":
  {"changes": [...]}}``;
- ``GET /api/int/studies/{id}/history`` -> ``{"changes": [...]}`` (the same list);
- ``GET /api/int/studies/{id}/history/{n}`` -> ``{"study": {...}, "studyVersion": n}``;
- each change: ``version`` (from 0, oldest first), ``date`` (the day the version was
  submitted), ``status``, ``studyType``, ``moduleLabels`` (the record's sections the version
  changed), ``lastUpdateSubmitQcDate``.

What the notes do not say is served the way the documented API does it: an unknown id or
version is a 404 with a ``text/plain`` body. :class:`~tests.fakes.ctgov_server.FakeCtGov`
hands every path under :data:`HISTORY_ROOT` here; its faults (``html``, ``status``, ...) apply
to these paths as to the others.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

HISTORY_ROOT = "/api/int"

_ROUTE = re.compile(r"/studies/(NCT\d{8})(/history(?:/(\d+))?)?", re.IGNORECASE)
_JSON = "application/json; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
# The website's labels of the record's sections (moduleLabels), by protocolSection key.
_LABELS = {
    "identificationModule": "Study Identification",
    "statusModule": "Study Status",
    "sponsorCollaboratorsModule": "Sponsor/Collaborators",
    "oversightModule": "Oversight",
    "descriptionModule": "Study Description",
    "conditionsModule": "Conditions",
    "designModule": "Study Design",
    "armsInterventionsModule": "Arms and Interventions",
    "outcomesModule": "Outcome Measures",
    "eligibilityModule": "Eligibility",
    "contactsLocationsModule": "Contacts/Locations",
    "referencesModule": "References",
}

Answer = tuple[int, bytes, str]


class RecordHistory:
    """Every version of each study it was given, served as the registry serves its history."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def put(self, nct_id: str, versions: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Serve ``versions`` (``(submitted day, record)``, oldest first) as ``nct_id``'s."""
        with self._lock:
            self._versions[nct_id.upper()] = [(day, copy.deepcopy(dict(r))) for day, r in versions]

    def answer(self, path: str, params: Mapping[str, str]) -> Answer:
        match = _ROUTE.fullmatch(path[len(HISTORY_ROOT) :].rstrip("/"))
        if match is None:
            return 404, f"Not Found: {path}".encode(), _TEXT
        nct_id, history, number = match.group(1).upper(), match.group(2), match.group(3)
        with self._lock:
            versions = self._versions.get(nct_id)
            if versions is None:
                return 404, f"Study {nct_id} not found".encode(), _TEXT
            if number is not None:
                n = int(number)
                if n >= len(versions):
                    return 404, f"Version {n} of {nct_id} not found".encode(), _TEXT
                return 200, orjson.dumps({"study": versions[n][1], "studyVersion": n}), _JSON
            changes = _changes(versions)
            if history:
                return 200, orjson.dumps({"changes": changes}), _JSON
            body: dict[str, Any] = {"study": versions[-1][1]}
            if params.get("history") == "true":
                body["history"] = {"changes": changes}
            return 200, orjson.dumps(body), _JSON


def _changes(versions: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    previous: dict[str, Any] = {}
    for n, (day, record) in enumerate(versions):
        section = record.get("protocolSection", {})
        status = section.get("statusModule", {})
        out.append(
            {
                "version": n,
                "date": day,
                "status": status.get("overallStatus"),
                "studyType": section.get("designModule", {}).get("studyType"),
                "moduleLabels": [
                    label
                    for key, label in _LABELS.items()
                    if n == 0 or section.get(key) != previous.get(key)
                ],
                "lastUpdateSubmitQcDate": status.get("lastUpdateSubmitDate", day),
            }
        )
        previous = section
    return out

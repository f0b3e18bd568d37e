"""An in-memory StudySource: the CT.gov client's contract without HTTP (fakes over mocks).

Its searches obey the same rules as the HTTP stand-ins (:mod:`tests.fakes.ctgov_behaviour`):
query areas ANDed, each area an Essie expression refused for bare brackets.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from tests.fakes import ctgov_behaviour as rules
from trialwatch.ctgov import record_fingerprint
from trialwatch.exceptions import ApiRequestError, FetchError
from trialwatch.models import ApiVersion, FoundStudy, MissingStudy, StudyResult, StudySummary


class FakeSource:
    def __init__(
        self, records: Iterable[Mapping[str, Any]] = (), data_timestamp: str = "2026-11-20T09:00:06"
    ) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        for record in records:
            self.put(record)
        self.data_timestamp = data_timestamp
        self.requests_made = 0
        self.fail_with: FetchError | None = None
        self.fail_after_version: FetchError | None = None
        self.short: set[str] = set()  # left out of answers that still count them (short read)
        self.requested: list[list[str]] = []  # the ids of every iter_studies call
        # Ids CT.gov refuses to look up: answered as the client answers a 400 it split down
        # to one id (trialwatch.ctgov), the rest of the batch fetched.
        self.refuse: set[str] = set()

    def put(self, record: Mapping[str, Any]) -> None:
        nct_id = record["protocolSection"]["identificationModule"]["nctId"]
        self.records[nct_id] = copy.deepcopy(dict(record))

    def version(self) -> ApiVersion:
        self.requests_made += 1
        if self.fail_with is not None:
            raise self.fail_with
        return ApiVersion("2.0.5", self.data_timestamp)

    def iter_studies(self, ids: Sequence[str]) -> Iterator[StudyResult]:
        self.requests_made += 1
        self.requested.append(list(ids))
        if self.fail_after_version is not None:
            raise self.fail_after_version
        for requested in ids:
            if requested in self.refuse:
                yield MissingStudy(
                    requested, confirmed=False, refused="refused by ClinicalTrials.gov (HTTP 400)"
                )
                continue
            if requested in self.short:
                yield MissingStudy(requested, confirmed=False)
                continue
            record = self.records.get(requested) or self._by_alias(requested)
            if record is None:
                yield MissingStudy(requested)
                continue
            nct_id = record["protocolSection"]["identificationModule"]["nctId"]
            yield FoundStudy(requested, nct_id, copy.deepcopy(record), record_fingerprint(record))

    def updated_since(self, day: date) -> frozenset[str]:
        """What CT.gov's LastUpdatePostDate search would answer (ids and their aliases)."""
        self.requests_made += 1
        if self.fail_after_version is not None:
            raise self.fail_after_version
        found: set[str] = set()
        for nct_id, record in self.records.items():
            status = record["protocolSection"].get("statusModule", {})
            posted = (status.get("lastUpdatePostDateStruct") or {}).get("date", "")
            if posted and posted >= day.isoformat():
                ident = record["protocolSection"]["identificationModule"]
                found.add(nct_id)
                found.update(ident.get("nctIdAliases", []))
        return frozenset(found)

    def search(self, params: Mapping[str, str]) -> tuple[StudySummary, ...]:
        """A registry search as the stand-ins answer it (:mod:`tests.fakes.ctgov_behaviour`):
        every ``query.*`` area must match (ANDed); a refused query raises ApiRequestError, as
        the client does for a 400."""
        self.requests_made += 1
        if self.fail_after_version is not None:
            raise self.fail_after_version
        wanted_status = {
            s.strip() for s in params.get("filter.overallStatus", "").split(",") if s.strip()
        }
        try:
            searches = [
                (area, rules.parse_query(area, value))
                for area, value in params.items()
                if area.startswith("query.")
            ]
        except rules.BadRequest as exc:
            raise ApiRequestError(
                f"GET /studies was refused: HTTP 400: {exc}", status_code=400
            ) from exc
        hits = []
        for nct_id, record in sorted(self.records.items()):
            protocol = record["protocolSection"]
            status = protocol.get("statusModule", {}).get("overallStatus")
            if wanted_status and status not in wanted_status:
                continue
            if not all(
                area in rules.QUERY_AREAS and rules.matches(expr, rules.study_texts(record, area))
                for area, expr in searches
            ):
                continue
            ident = protocol["identificationModule"]
            hits.append(
                StudySummary(
                    nct_id=nct_id,
                    brief_title=ident.get("briefTitle"),
                    acronym=ident.get("acronym"),
                    phases=tuple(protocol.get("designModule", {}).get("phases", [])),
                    overall_status=status,
                    lead_sponsor=protocol.get("sponsorCollaboratorsModule", {})
                    .get("leadSponsor", {})
                    .get("name"),
                    first_posted=protocol.get("statusModule", {})
                    .get("studyFirstPostDateStruct", {})
                    .get("date"),
                )
            )
        return tuple(hits)

    def _by_alias(self, requested: str) -> dict[str, Any] | None:
        for record in self.records.values():
            aliases = record["protocolSection"]["identificationModule"].get("nctIdAliases", [])
            if requested in aliases:
                return record
        return None

"""The record history's answers, checked in one place; the backfill's pure decisions."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.registry_versions import SEAL, seal_versions
from trialwatch.backfill import join_full, join_status, read_version, versions_to_fetch
from trialwatch.config import ApiSettings
from trialwatch.ctgov import CtGovClient
from trialwatch.exceptions import RegistryHistoryError
from trialwatch.models import LiveStart, RegistryEntry
from trialwatch.normalize import canonical_bytes, hash_of, normalize
from trialwatch.rawcodec import compress
from trialwatch.registry_history import RegistryHistory, read_version_list
from trialwatch.registry_history import read_version as check_version

DATA = Path(__file__).parent / "data" / "registry"


def _fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --- the shape expected, in one place -------------------------------------------------------------


def test_the_version_list_reads_both_shapes_the_registry_serves() -> None:
    listed = read_version_list(SEAL, _fixture("history-list.json"))
    assert [(e.version, e.date, e.status) for e in listed] == [
        (0, "2017-11-10", "NOT_YET_RECRUITING"),
        (1, "2018-03-05", "RECRUITING"),
        (2, "2020-02-10", "RECRUITING"),
    ]
    assert listed[1].module_labels == ("Study Status",)
    embedded = read_version_list(SEAL, _fixture("history-true.json"))
    assert [e.status for e in embedded] == ["NOT_YET_RECRUITING", "RECRUITING"]


def test_a_version_reads_as_a_v2_study() -> None:
    study = check_version(SEAL, 1, _fixture("history-version.json"))
    assert study["protocolSection"]["statusModule"]["overallStatus"] == "RECRUITING"


def _broken_list(mutate: Any) -> bytes:
    data = json.loads(_fixture("history-list.json"))
    mutate(data)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<!DOCTYPE html><html><body>Down for maintenance</body></html>", "HTML page"),
        (b"{not json", "not valid JSON"),
        (b"[]", 'a "changes" list'),
        (_broken_list(lambda d: d.pop("changes")), 'a "changes" list'),
        (_broken_list(lambda d: d["changes"].pop(0)), "expected 0"),
        (_broken_list(lambda d: d["changes"][1].update(date="2018/03/05")), "YYYY-MM-DD"),
        (_broken_list(lambda d: d["changes"][2].update(date="2016-01-01")), "before version 1"),
        (_broken_list(lambda d: d["changes"][0].update(status=3)), "status 3"),
        (_broken_list(lambda d: d["changes"][0].update(moduleLabels="x")), "moduleLabels"),
        (_broken_list(lambda d: d.update(changes=[])), "no version"),
    ],
)
def test_any_other_list_fails_closed_naming_the_trial(body: bytes, says: str) -> None:
    with pytest.raises(RegistryHistoryError) as info:
        read_version_list(SEAL, body)
    assert str(info.value).startswith(f"{SEAL}: the registry's version list")
    assert says in str(info.value)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"studyVersion": 1}', '"study" object'),
        (b'{"study": {"protocolSection": {}}, "studyVersion": 1}', "nctId"),
        (b'{"study": {"protocolSection": {}}, "studyVersion": 2}', "studyVersion is 2"),
        (
            b'{"study": {"protocolSection": {"identificationModule": {"nctId": "NCT01234567"}}},'
            b' "studyVersion": 1}',
            "record of NCT01234567",
        ),
    ],
)
def test_any_other_version_fails_closed_naming_the_trial(body: bytes, says: str) -> None:
    with pytest.raises(RegistryHistoryError) as info:
        check_version(SEAL, 1, body)
    assert str(info.value).startswith(f"{SEAL}: the registry's version 1")
    assert says in str(info.value)


def test_the_history_base_is_the_api_origins_api_int_unless_set() -> None:
    assert ApiSettings().registry_history_url == "https://clinicaltrials.gov/api/int"
    local = ApiSettings(base_url="http://127.0.0.1:8000/api/v2")
    assert local.registry_history_url == "http://127.0.0.1:8000/api/int"
    own = ApiSettings(history_url="https://mirror.example/int/")
    assert own.registry_history_url == "https://mirror.example/int"


def test_the_client_paces_and_retries_history_requests_like_any_other() -> None:
    answers = iter(
        [httpx.Response(503), httpx.Response(200, content=_fixture("history-list.json"))]
    )
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return next(answers)

    waits: list[float] = []
    client = CtGovClient(
        base_url="https://clinicaltrials.gov/api/v2",
        transport=httpx.MockTransport(handler),
        sleep=waits.append,
        backoff_initial_s=0.01,
    )
    with client:
        history = RegistryHistory(client, "https://clinicaltrials.gov/api/int")
        assert len(history.version_list(SEAL)) == 3
        assert history.requests_made == 2
    assert seen == [f"https://clinicaltrials.gov/api/int/studies/{SEAL}/history"] * 2
    assert waits  # the 503 was waited out


# --- the pure decisions -------------------------------------------------------------------------


def _read(day: str, record: dict[str, Any], n: int) -> Any:
    body = json.dumps(record).encode()
    entry = RegistryEntry(n, day, record["protocolSection"]["statusModule"]["overallStatus"])
    return read_version(entry, compress(body), record)


def _live(record: dict[str, Any], seen: str) -> LiveStart:
    snapshot = normalize(record)
    return LiveStart(
        1, hash_of(canonical_bytes(snapshot)), snapshot, datetime.fromisoformat(seen + "T10:00Z")
    )


def _status_changes(join: Any) -> list[tuple[str, Any, Any]]:
    return [
        (e.date, e.change.old, e.change.new)
        for e in join.events
        if e.change.field == "overall_status"
    ]


def test_versions_since_the_first_sync_are_not_fetched() -> None:
    entries = [RegistryEntry(n, day, None) for n, (day, _) in enumerate(seal_versions())]
    live = _live(seal_versions()[2][1], "2021-01-01")
    assert versions_to_fetch(entries, [], live) == [0, 1, 2]
    assert versions_to_fetch(entries, [0, 1], live) == [2]


def test_the_registry_meets_the_live_history_where_the_content_is_the_same() -> None:
    versions = [_read(day, record, n) for n, (day, record) in enumerate(seal_versions())]
    live = _live(seal_versions()[-1][1], "2026-11-20")
    join = join_full(SEAL, versions, live)
    assert _status_changes(join) == [
        ("2018-03-05", "NOT_YET_RECRUITING", "RECRUITING"),
        ("2026-05-12", "RECRUITING", "ACTIVE_NOT_RECRUITING"),
    ]
    # The last registry version is the live baseline: stored once, as the live one.
    assert [v.version for v in join.versions] == [0, 1, 2]
    assert join.events[-1].to_hash == live.content_hash


def test_a_trial_watched_for_years_keeps_its_live_history() -> None:
    """Watched live since 2019 (version 1's content): the registry fills only the time before;
    version 2 (2020) and 3 were seen live and are not told again."""
    versions = [_read(day, record, n) for n, (day, record) in enumerate(seal_versions())]
    live = _live(seal_versions()[1][1], "2019-06-01")
    join = join_full(SEAL, versions, live)
    assert _status_changes(join) == [("2018-03-05", "NOT_YET_RECRUITING", "RECRUITING")]
    assert {e.version for e in join.events} == {1}
    assert [v.version for v in join.versions] == [0]


def test_without_the_same_content_the_first_syncs_day_is_the_seam() -> None:
    """The history's records read differently from the live one: the versions before the
    first sync's day, then one step to what that sync stored, dated by its day."""
    seal = seal_versions()
    versions = [_read(day, record, n) for n, (day, record) in enumerate(seal[:3])]
    live_record = seal[-1][1]
    live = _live(live_record, "2021-01-01")
    join = join_full(SEAL, versions, live)
    assert _status_changes(join) == [
        ("2018-03-05", "NOT_YET_RECRUITING", "RECRUITING"),
        ("2021-01-01", "RECRUITING", "ACTIVE_NOT_RECRUITING"),
    ]


def test_status_only_gives_the_same_status_events() -> None:
    seal = seal_versions()
    entries = [
        RegistryEntry(n, day, record["protocolSection"]["statusModule"]["overallStatus"])
        for n, (day, record) in enumerate(seal)
    ]
    live = _live(seal[-1][1], "2026-11-20")
    join = join_status(SEAL, entries, live)
    assert _status_changes(join) == [
        ("2018-03-05", "NOT_YET_RECRUITING", "RECRUITING"),
        ("2026-05-12", "RECRUITING", "ACTIVE_NOT_RECRUITING"),
    ]
    assert [e.change.field for e in join.events] == ["overall_status"] * 2
    full = join_full(SEAL, [_read(d, r, n) for n, (d, r) in enumerate(seal)], live)
    assert [e.change.summary for e in join.events] == [
        e.change.summary for e in full.events if e.change.field == "overall_status"
    ]


def test_a_history_of_one_version_gives_no_events() -> None:
    seal = seal_versions()
    live = _live(seal[-1][1], "2026-11-20")
    versions = [_read("2026-05-12", seal[-1][1], 0)]
    assert join_full(SEAL, versions, live).events == ()

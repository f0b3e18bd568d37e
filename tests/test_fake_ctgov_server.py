"""The fake ClinicalTrials.gov server: first against plain httpx (does it behave like the API?),
then with the real CtGovClient (does the client cope with it, faults included?)."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.ctgov_server import FakeCtGov, clone_record, load_records
from trialwatch.ctgov import CtGovClient
from trialwatch.exceptions import (
    ApiRequestError,
    ApiUnavailableError,
    ApiUnreachableError,
    ShortReadError,
)
from trialwatch.models import FoundStudy, MissingStudy, StudySummary

ALIAS = "NCT02380456"  # listed in NCT02300909's nctIdAliases
CANONICAL = "NCT02300909"
ABSENT = "NCT09999999"
REPO = Path(__file__).resolve().parents[1]
# Building a TLS context costs ~0.1 s per httpx.Client; the plain-httpx probes share one.
TLS = ssl.create_default_context()


def thirteen_records() -> list[dict[str, Any]]:
    """The 11 real studies plus 2 DERIVED ones (clones of a real record, new ids)."""
    real = load_records()
    assert len(real) == 11
    return [*real, clone_record(real[0], "NCT90000001"), clone_record(real[1], "NCT90000002")]


THIRTEEN = thirteen_records()
IDS = [r["protocolSection"]["identificationModule"]["nctId"] for r in THIRTEEN]


def ids_of(body: dict[str, Any]) -> list[str]:
    return [s["protocolSection"]["identificationModule"]["nctId"] for s in body["studies"]]


@pytest.fixture
def api() -> Iterator[FakeCtGov]:
    with FakeCtGov(THIRTEEN) as fake:
        yield fake


@pytest.fixture
def http(api: FakeCtGov) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, timeout=5, verify=TLS) as client:
        yield client


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(api: FakeCtGov, sleeps: list[float]) -> Iterator[CtGovClient]:
    with CtGovClient(
        base_url=api.base_url, min_interval_s=0, timeout_s=5, sleep=sleeps.append
    ) as c:
        yield c


def assert_text_error(response: httpx.Response, status: int, text: str = "") -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/plain")
    assert text in response.text


# -- the fake, seen through plain httpx --------------------------------------------------------


def test_version(api: FakeCtGov, http: httpx.Client) -> None:
    response = http.get("/version")
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"apiVersion": "2.0.5", "dataTimestamp": "2026-11-20T09:00:06"}
    api.set_data_timestamp("2026-11-21T09:00:06")
    assert http.get("/version").json()["dataTimestamp"] == "2026-11-21T09:00:06"


def test_default_page_size_is_10_and_tokens_page_on(http: httpx.Client) -> None:
    query = {"filter.ids": ",".join(IDS)}
    first = http.get("/studies", params=query).json()
    assert len(first["studies"]) == 10  # the classic bug: 13 asked, 10 answered
    assert "totalCount" not in first
    second = http.get("/studies", params={**query, "pageToken": first["nextPageToken"]}).json()
    assert "nextPageToken" not in second
    assert sorted(ids_of(first) + ids_of(second)) == sorted(IDS)


def test_total_count_only_on_the_first_page(http: httpx.Client) -> None:
    query = {"pageSize": "5", "countTotal": "true"}
    first = http.get("/studies", params=query).json()
    assert first["totalCount"] == 13
    second = http.get("/studies", params={**query, "pageToken": first["nextPageToken"]}).json()
    assert "totalCount" not in second
    assert len(second["studies"]) == 5


@pytest.mark.parametrize(("size", "expected"), [("0", 10), ("3", 3), ("5000", 13)])
def test_page_size(http: httpx.Client, size: str, expected: int) -> None:
    body = http.get("/studies", params={"pageSize": size}).json()
    assert len(body["studies"]) == expected


@pytest.mark.parametrize("size", ["-1", "ten", "1.5", ""])
def test_bad_page_size_is_400(http: httpx.Client, size: str) -> None:
    assert_text_error(http.get("/studies", params={"pageSize": size}), 400, "pageSize")


def test_page_tokens_are_checked(http: httpx.Client) -> None:
    first = http.get("/studies", params={"pageSize": "2"}).json()
    token = first["nextPageToken"]
    assert_text_error(http.get("/studies", params={"pageToken": "garbage!"}), 400, "pageToken")
    changed = {"pageToken": token, "filter.ids": CANONICAL}  # not the query it came from
    assert_text_error(http.get("/studies", params=changed), 400, "pageToken")
    # pageSize may change between pages (spec)
    again = http.get("/studies", params={"pageToken": token, "pageSize": "20"}).json()
    assert len(again["studies"]) == 11


def test_no_filter_returns_every_study(http: httpx.Client) -> None:
    assert sorted(ids_of(http.get("/studies", params={"pageSize": "100"}).json())) == sorted(IDS)


def test_ids_comma_or_pipe_unknown_ids_absent(http: httpx.Client) -> None:
    wanted = [IDS[0], ABSENT, IDS[1].lower()]
    for sep in (",", "|"):
        body = http.get("/studies", params={"filter.ids": sep.join(wanted)}).json()
        assert sorted(ids_of(body)) == sorted(IDS[:2])
        assert "nextPageToken" not in body


@pytest.mark.parametrize(
    "bad", ["NCT00000000", "NCT０２３００９０９", "NCT02300909 ", "XNCT02300909"]
)
def test_one_id_off_the_spec_pattern_refuses_the_whole_request(
    http: httpx.Client, bad: str
) -> None:
    # Spec: ^[Nn][Cc][Tt]0*[1-9]\d{0,7}$ on every item; ASCII digits only (the JVM's \d).
    response = http.get("/studies", params={"filter.ids": f"{IDS[0]},{bad}"})
    assert_text_error(response, 400, "filter.ids")


def test_short_ids_fit_the_spec_pattern_and_are_simply_absent(http: httpx.Client) -> None:
    body = http.get("/studies", params={"filter.ids": f"{IDS[0]},NCT123"}).json()
    assert ids_of(body) == [IDS[0]]


def test_alias_returns_the_canonical_study(http: httpx.Client) -> None:
    body = http.get("/studies", params={"filter.ids": ALIAS}).json()
    assert ids_of(body) == [CANONICAL]


def test_unknown_parameter_is_400_text_plain(http: httpx.Client) -> None:
    response = http.get("/studies", params={"query.recrs": "x"})
    assert_text_error(response, 400)
    assert response.text == "`query.recrs` is unknown parameter"


def test_known_parameters_are_accepted(http: httpx.Client) -> None:
    params = {
        "format": "json",
        "markupFormat": "markdown",
        "filter.overallStatus": "COMPLETED|TERMINATED",
        "filter.advanced": "AREA[LastUpdatePostDate]RANGE[2020-01-01,MAX]",
        "postFilter.ids": ",".join(IDS),
        "sort": "LastUpdatePostDate",
        "countTotal": "false",
        "pageSize": "100",
    }
    body = http.get("/studies", params=params).json()
    assert ids_of(body) == ["NCT04544683", "NCT04650945"]
    for study in body["studies"]:
        status = study["protocolSection"]["statusModule"]
        assert status["overallStatus"] in ("COMPLETED", "TERMINATED")
        assert status["lastUpdatePostDateStruct"]["date"] >= "2020-01-01"


def test_an_area_the_fake_cannot_search_is_accepted_and_matches_nothing(
    http: httpx.Client,
) -> None:
    # The less kind reading (see ctgov_behaviour.parse_studies_query): fewer hits, never more.
    body = http.get("/studies", params={"query.locn": "anything"}).json()
    assert body == {"studies": []}


def search(http: httpx.Client, **params: str) -> list[str]:
    body = http.get("/studies", params={"pageSize": "100", **params}).json()
    return sorted(ids_of(body))


@pytest.mark.parametrize(
    ("name", "query", "expected"),
    [
        # interventions (NCT90000001 is a clone of NCT00712335), OR between terms, any case
        ("query.intr", "MONTELUKAST OR k-877", ["NCT00712335", "NCT05923281", "NCT90000001"]),
        ("query.intr", '("dexcom professional")', ["NCT05420714"]),
        ("query.cond", "asthmatic", ["NCT00712335", "NCT02967393", "NCT05915845", "NCT90000001"]),
        ("query.cond", "SPONDYLOSIS", ["NCT04544683"]),
        ("query.spons", "pfizer OR kowa", ["NCT05923112", "NCT05923281"]),
        # the general term looks at titles, conditions, interventions, sponsors and ids
        ("query.term", "university of utah", ["NCT04544683"]),
        ("query.term", "nct02967393", ["NCT02967393"]),
        ("query.term", "AO-1000", ["NCT01339377"]),
        ("query.intr", "selinexor OR KPT-330 OR XPOVIO", []),
    ],
)
def test_query_params_match_substrings(
    http: httpx.Client, name: str, query: str, expected: list[str]
) -> None:
    assert search(http, **{name: query}) == expected


def test_query_params_and_filters_all_apply(http: httpx.Client) -> None:
    both = {"query.cond": "diabet", "query.spons": "aarhus OR texas OR endocrine"}
    assert search(http, **both) == ["NCT01213277", "NCT04650945", "NCT05420714", "NCT90000002"]
    with_status = {**both, "filter.overallStatus": "WITHDRAWN,TERMINATED"}
    assert search(http, **with_status) == ["NCT04650945", "NCT05420714"]
    recent = {**both, "filter.advanced": "AREA[LastUpdatePostDate]RANGE[2022-07-01,MAX]"}
    assert search(http, **recent) == ["NCT04650945", "NCT05420714"]


def test_a_query_may_be_a_last_update_range(http: httpx.Client) -> None:
    term = {"query.term": "AREA[LastUpdatePostDate]RANGE[2023-06-28,MAX]"}
    assert search(http, **term) == ["NCT04544683", "NCT05923112", "NCT05923281"]


def test_an_empty_query_is_400(http: httpx.Client) -> None:
    assert_text_error(http.get("/studies", params={"query.cond": " OR "}), 400, "query.cond")


def test_a_query_pages_on_with_its_count(http: httpx.Client) -> None:
    query = {"query.term": "a", "pageSize": "4", "countTotal": "true", "fields": "NCTId"}
    first = http.get("/studies", params=query).json()
    total = first["totalCount"]
    assert total > 8
    seen = ids_of(first)
    token = first.get("nextPageToken")
    while token is not None:
        body = http.get("/studies", params={**query, "pageToken": token}).json()
        assert "totalCount" not in body
        seen += ids_of(body)
        token = body.get("nextPageToken")
    assert len(seen) == len(set(seen)) == total


def test_leaf_fields_are_served_nested_as_in_the_record(http: httpx.Client) -> None:
    fields = (
        "NCTId,NCTIdAlias,BriefTitle,Acronym,Phase,OverallStatus,LeadSponsorName,"
        "StudyFirstPostDate,LastUpdatePostDate"
    )
    body = http.get("/studies", params={"filter.ids": CANONICAL, "fields": fields}).json()
    assert body["studies"] == [
        {
            "protocolSection": {
                "identificationModule": {
                    "nctId": CANONICAL,
                    "nctIdAliases": [ALIAS],
                    "briefTitle": THIRTEEN[3]["protocolSection"]["identificationModule"][
                        "briefTitle"
                    ],
                },  # no acronym: the record has none, so the key is absent
                "statusModule": {
                    "overallStatus": "COMPLETED",
                    "studyFirstPostDateStruct": {"date": "2014-11-25"},
                    "lastUpdatePostDateStruct": {"date": "2018-08-23"},
                },
                "sponsorCollaboratorsModule": {"leadSponsor": {"name": "MiMedx Group, Inc."}},
                "designModule": {"phases": ["NA"]},
            }
        }
    ]
    # A field inside a piece asked for whole adds nothing.
    whole = http.get(
        "/studies", params={"filter.ids": CANONICAL, "fields": "StatusModule|OverallStatus"}
    ).json()["studies"][0]
    assert whole == {
        "protocolSection": {"statusModule": THIRTEEN[3]["protocolSection"]["statusModule"]}
    }


def test_fields_projection(http: httpx.Client) -> None:
    params = {"filter.ids": CANONICAL}
    full = http.get("/studies", params=params).json()["studies"][0]
    assert set(full) == {"protocolSection", "derivedSection", "hasResults"}
    both = http.get("/studies", params={**params, "fields": "ProtocolSection|HasResults"})
    assert set(both.json()["studies"][0]) == {"protocolSection", "hasResults"}
    lower = http.get("/studies", params={**params, "fields": "protocolsection,hasresults"})
    assert lower.json() == both.json()
    only_id = http.get("/studies", params={**params, "fields": "NCTId"}).json()["studies"][0]
    assert only_id == {"protocolSection": {"identificationModule": {"nctId": CANONICAL}}}
    assert_text_error(http.get("/studies", params={**params, "fields": "Nope"}), 400, "Nope")


def test_single_study(http: httpx.Client) -> None:
    response = http.get(f"/studies/{CANONICAL}")
    assert response.status_code == 200
    assert response.json()["protocolSection"]["identificationModule"]["nctId"] == CANONICAL


def test_single_study_alias_redirects(http: httpx.Client) -> None:
    response = http.get(f"/studies/{ALIAS}", params={"fields": "NCTId"})
    assert response.status_code == 301
    assert response.headers["location"] == f"/api/v2/studies/{CANONICAL}?fields=NCTId"
    followed = http.get(f"/studies/{ALIAS}", params={"fields": "NCTId"}, follow_redirects=True)
    assert followed.json() == {"protocolSection": {"identificationModule": {"nctId": CANONICAL}}}


def test_single_study_errors_are_text_plain(http: httpx.Client) -> None:
    assert_text_error(http.get(f"/studies/{ABSENT}"), 404, ABSENT)
    assert_text_error(http.get("/studies/NCT00000000"), 400, "nctId")  # off the spec pattern
    assert_text_error(http.get(f"/studies/{CANONICAL}", params={"pageSize": "1"}), 400)


def test_unknown_paths_and_methods(api: FakeCtGov, http: httpx.Client) -> None:
    assert_text_error(http.get("/nope"), 404)
    assert_text_error(http.get(f"http://127.0.0.1:{api.port}/"), 404)
    assert_text_error(http.post("/studies", json={}), 405)
    assert http.get("/version").status_code == 200  # the server survived all that


def test_requests_are_recorded(api: FakeCtGov, http: httpx.Client) -> None:
    http.get("/version")
    http.get("/studies", params={"filter.ids": CANONICAL}, headers={"User-Agent": "probe/1"})
    http.get(f"/studies/{CANONICAL}")
    assert api.count() == 3
    assert api.count("/studies") == 1
    assert api.count("/version") == 1
    request = api.requests[1]
    assert (request.method, request.path) == ("GET", "/api/v2/studies")
    assert request.params == {"filter.ids": CANONICAL}
    assert request.headers["user-agent"] == "probe/1"
    api.clear_requests()
    assert api.requests == []


def test_update_remove_and_put(api: FakeCtGov, http: httpx.Client) -> None:
    def recruit(record: dict[str, Any]) -> None:
        record["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"

    updated = api.update_study(CANONICAL, recruit)
    assert api.data_timestamp == "2026-11-21T09:00:06"
    status = http.get(f"/studies/{CANONICAL}").json()["protocolSection"]["statusModule"]
    assert status["overallStatus"] == "RECRUITING"
    assert status["lastUpdatePostDateStruct"] == {"date": "2026-11-21", "type": "ACTUAL"}
    assert updated["protocolSection"]["statusModule"] == status

    api.update_study(CANONICAL, recruit, bump=False)
    assert api.data_timestamp == "2026-11-21T09:00:06"

    api.remove_study(CANONICAL)
    assert http.get(f"/studies/{CANONICAL}").status_code == 404
    assert ids_of(http.get("/studies", params={"filter.ids": ALIAS}).json()) == []

    api.put_study(load_records()[3])
    assert http.get(f"/studies/{CANONICAL}").status_code == 200
    with pytest.raises(KeyError):
        api.update_study(ABSENT, recruit)


def test_data_is_isolated_from_callers(api: FakeCtGov) -> None:
    record = api.study(CANONICAL)
    record["protocolSection"]["statusModule"]["overallStatus"] = "WITHDRAWN"
    assert api.study(CANONICAL)["protocolSection"]["statusModule"]["overallStatus"] == "COMPLETED"


def test_load_dir_skips_dated_versions() -> None:
    fake = FakeCtGov.load_dir()
    assert len(fake.nct_ids) == 11
    assert "NCT05923112" in fake.nct_ids


# -- faults --------------------------------------------------------------------------------------


def test_fault_status_with_headers(api: FakeCtGov, http: httpx.Client) -> None:
    api.inject("status", status=429, headers={"Retry-After": "1"}, times=2)
    for _ in range(2):
        response = http.get("/version")
        assert_text_error(response, 429)
        assert response.headers["retry-after"] == "1"
    assert http.get("/version").status_code == 200


def test_fault_html(api: FakeCtGov, http: httpx.Client) -> None:
    api.inject("html")
    response = http.get("/version")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "maintenance" in response.text


def test_fault_garbage(api: FakeCtGov, http: httpx.Client) -> None:
    api.inject("garbage")
    response = http.get("/version")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(ValueError):  # noqa: PT011 - JSONDecodeError or UnicodeDecodeError
        json.loads(response.content)


def test_fault_truncate(api: FakeCtGov, http: httpx.Client) -> None:
    full = http.get("/version").content
    api.inject("truncate")
    cut = http.get("/version")
    assert cut.status_code == 200
    assert full.startswith(cut.content)
    assert 0 < len(cut.content) < len(full)
    api.inject("truncate", abort=True)
    with pytest.raises(httpx.TransportError):
        http.get("/version")


def test_fault_delay(api: FakeCtGov, http: httpx.Client) -> None:
    api.inject("delay", seconds=0.05)
    started = time.monotonic()
    assert http.get("/version").status_code == 200
    assert time.monotonic() - started >= 0.05


def test_fault_reset(api: FakeCtGov, http: httpx.Client) -> None:
    api.inject("reset")
    with pytest.raises(httpx.TransportError):
        http.get("/version")
    assert http.get("/version").status_code == 200


def test_fault_short_leaves_a_study_off_but_counts_it(api: FakeCtGov, http: httpx.Client) -> None:
    query = {"filter.ids": ",".join(IDS), "pageSize": "100", "countTotal": "true"}
    api.inject("short", nct_id=IDS[5].lower(), path="/studies")
    short = http.get("/studies", params=query).json()
    assert short["totalCount"] == 13
    assert ids_of(short) == IDS[:5] + IDS[6:]
    api.inject("short")  # by default the first study of the page
    assert ids_of(http.get("/studies", params=query).json()) == IDS[1:]
    assert ids_of(http.get("/studies", params=query).json()) == IDS  # used up

    paged = {**query, "pageSize": "5"}
    api.inject("short", nct_id=IDS[7])  # waits for the page that holds it
    assert http.get("/version").status_code == 200
    first = http.get("/studies", params=paged).json()
    second = http.get("/studies", params={**paged, "pageToken": first["nextPageToken"]}).json()
    assert (ids_of(first), ids_of(second)) == (IDS[:5], [*IDS[5:7], *IDS[8:10]])
    assert len(ids_of(http.get("/studies", params=query).json())) == 13  # used up

    api.fail_all("short", nct_id=IDS[0])
    first = http.get("/studies", params=paged).json()
    second = http.get("/studies", params={**paged, "pageToken": first["nextPageToken"]}).json()
    assert (first["totalCount"], ids_of(first), ids_of(second)) == (13, IDS[1:5], IDS[5:10])
    assert http.get("/version").status_code == 200  # not a /studies page: answered normally
    api.clear_faults()
    assert len(ids_of(http.get("/studies", params=query).json())) == 13
    with pytest.raises(ValueError, match="not a valid NCT ID"):
        api.inject("short", nct_id="NCT1")


def test_faults_target_paths_and_queue_in_order(api: FakeCtGov, http: httpx.Client) -> None:
    api.inject("status", status=500, path="/studies")
    api.inject("status", status=502)
    assert http.get("/version").status_code == 502  # the /studies fault does not match
    assert http.get(f"/studies/{CANONICAL}").status_code == 200  # nor does /studies/{id}
    assert http.get("/studies").status_code == 500
    assert http.get("/studies").status_code == 200


def test_fail_all_until_cleared(api: FakeCtGov, http: httpx.Client) -> None:
    api.fail_all("status", status=503)
    assert [http.get("/version").status_code for _ in range(3)] == [503] * 3
    api.clear_faults()
    assert http.get("/version").status_code == 200


def test_bad_fault_requests_are_refused(api: FakeCtGov) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        api.inject("explode")
    with pytest.raises(TypeError, match="takes no option"):
        api.inject("reset", seconds=1)


def test_stopped_fake_is_unreachable(api: FakeCtGov, http: httpx.Client) -> None:
    assert http.get("/version").status_code == 200  # a keep-alive connection is now open
    api.stop()
    with pytest.raises(httpx.TransportError):
        http.get("/version")


def test_runnable_by_hand() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.ctgov_server", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        # Ctrl-C as a terminal delivers it, whatever the worker running this test ignores
        # (an ignored SIGINT is inherited, and Python then never raises KeyboardInterrupt).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.split(" at ")[1].split()[0]
        assert httpx.get(f"{base_url}/version", timeout=5).json()["apiVersion"] == "2.0.5"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            # Drain both pipes while it stops: a child blocked on a full pipe never exits.
            _, err = process.communicate(timeout=60)  # a loaded machine is slow, not stuck
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
            raise AssertionError(f"the stand-in did not stop on Ctrl-C; it said: {err}") from None
        assert process.returncode == 0, err


# -- the real client against the fake ------------------------------------------------------------


def test_client_gets_thirteen_studies_in_one_request(api: FakeCtGov, client: CtGovClient) -> None:
    results = list(client.iter_studies(IDS))
    assert {r.requested_id for r in results if isinstance(r, FoundStudy)} == set(IDS)
    assert api.count("/studies") == 1
    assert client.requests_made == 1
    study = next(r for r in results if isinstance(r, FoundStudy)).record
    assert set(study) == {"protocolSection", "hasResults"}  # no derivedSection churn


def test_client_pages_through_small_batches_and_accounts_for_every_id(
    api: FakeCtGov, sleeps: list[float]
) -> None:
    ids = [*IDS, ALIAS, ABSENT]
    with CtGovClient(
        base_url=api.base_url, min_interval_s=0, batch_size=4, sleep=sleeps.append
    ) as client:
        results = list(client.iter_studies(ids))
    found = {r.requested_id: r.nct_id for r in results if isinstance(r, FoundStudy)}
    assert found == {**{i: i for i in IDS}, ALIAS: CANONICAL}
    assert [r.requested_id for r in results if isinstance(r, MissingStudy)] == [ABSENT]
    assert api.count("/studies") == 4  # 15 ids in batches of 4


def test_client_tells_a_short_read_from_an_absent_study(
    api: FakeCtGov, client: CtGovClient
) -> None:
    results = list(client.iter_studies([*IDS, ABSENT]))
    assert [r for r in results if isinstance(r, MissingStudy)] == [
        MissingStudy(ABSENT, confirmed=True)
    ]
    assert api.requests[-1].params["countTotal"] == "true"

    api.inject("short", nct_id=IDS[7], path="/studies")
    results = list(client.iter_studies([*IDS, ABSENT]))
    assert [r for r in results if isinstance(r, MissingStudy)] == [
        MissingStudy(IDS[7], confirmed=False),
        MissingStudy(ABSENT, confirmed=False),
    ]
    assert api.count("/studies") == 2


def test_client_searches_the_stand_in(api: FakeCtGov, client: CtGovClient) -> None:
    hits = client.search(
        {"query.intr": "montelukast OR K-877", "filter.overallStatus": "RECRUITING,COMPLETED"}
    )
    assert hits == (
        StudySummary(
            nct_id="NCT00712335",
            brief_title=THIRTEEN[0]["protocolSection"]["identificationModule"]["briefTitle"],
            phases=("PHASE4",),
            overall_status="COMPLETED",
            lead_sponsor="Inje University",
            first_posted="2008-07-09",
            last_update_posted="2012-05-16",
        ),
        StudySummary(
            nct_id="NCT05923281",
            brief_title=THIRTEEN[10]["protocolSection"]["identificationModule"]["briefTitle"],
            phases=("PHASE3",),
            overall_status="RECRUITING",
            lead_sponsor="Kowa Company, Ltd.",
            first_posted="2023-06-28",
            last_update_posted="2023-06-28",
        ),
        StudySummary(
            nct_id="NCT90000001",
            brief_title=THIRTEEN[0]["protocolSection"]["identificationModule"]["briefTitle"],
            phases=("PHASE4",),
            overall_status="COMPLETED",
            lead_sponsor="Inje University",
            first_posted="2008-07-09",
            last_update_posted="2012-05-16",
        ),
    )
    assert api.count("/studies") == 1


def test_client_searches_through_several_pages_and_notices_a_short_one(
    sleeps: list[float],
) -> None:
    # Small invented records: what is tested is paging and counting, not the records.
    many = [
        {"protocolSection": {"identificationModule": {"nctId": f"NCT{80000000 + i:08d}"}}}
        for i in range(1200)
    ]
    with (
        FakeCtGov(many) as api,
        CtGovClient(base_url=api.base_url, min_interval_s=0, sleep=sleeps.append) as client,
    ):
        hits = client.search({"query.term": "NCT8"})
        assert [h.nct_id for h in hits] == [f"NCT{80000000 + i:08d}" for i in range(1200)]
        assert api.count("/studies") == 2  # 1000 + 200

        api.inject("short", nct_id="NCT80001100", path="/studies")
        with pytest.raises(ShortReadError) as caught:
            client.search({"query.term": "NCT8"})
        assert (caught.value.expected, caught.value.received) == (1200, 1199)


def test_client_lists_what_was_updated_since_a_day(api: FakeCtGov, client: CtGovClient) -> None:
    assert client.updated_since(date(2026, 11, 21)) == frozenset()

    api.update_study(CANONICAL, lambda r: None)  # published on the next data day, 2026-11-21
    assert client.updated_since(date(2026, 11, 21)) == {CANONICAL, ALIAS}
    assert client.updated_since(date(2023, 6, 28)) == {
        CANONICAL,
        ALIAS,
        "NCT04544683",
        "NCT05923112",
        "NCT05923281",
    }
    request = api.requests[-1]
    assert request.params["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2023-06-28,MAX]"

    api.inject("short", path="/studies")
    with pytest.raises(ShortReadError):
        client.updated_since(date(2023, 6, 28))


def test_client_version(api: FakeCtGov, client: CtGovClient) -> None:
    assert client.version().data_timestamp == api.data_timestamp


@pytest.mark.parametrize(
    ("kind", "opts"),
    [
        ("status", {"status": 503, "headers": {"Retry-After": "2"}}),
        ("status", {"status": 500}),
        ("html", {}),
        ("garbage", {}),
        ("truncate", {}),
        ("truncate", {"abort": True}),
        ("reset", {}),
    ],
)
def test_client_recovers_from_faults(
    api: FakeCtGov, client: CtGovClient, sleeps: list[float], kind: str, opts: dict[str, Any]
) -> None:
    api.inject(kind, times=2, path="/studies", **opts)
    results = list(client.iter_studies(IDS))
    assert len([r for r in results if isinstance(r, FoundStudy)]) == 13
    assert client.requests_made == 3
    assert len(sleeps) == 2
    if "headers" in opts:
        assert sleeps == [2.0, 2.0]


def test_client_times_out_on_a_slow_answer_and_retries(api: FakeCtGov) -> None:
    api.inject("delay", seconds=0.5)
    with CtGovClient(
        base_url=api.base_url, timeout_s=0.1, min_interval_s=0, sleep=lambda _: None
    ) as client:
        assert client.version().api_version == "2.0.5"
        assert client.requests_made == 2


def test_client_gives_up_when_the_api_is_down(api: FakeCtGov, sleeps: list[float]) -> None:
    api.fail_all("html")
    with (
        CtGovClient(
            base_url=api.base_url, max_attempts=3, min_interval_s=0, sleep=sleeps.append
        ) as client,
        pytest.raises(ApiUnavailableError, match="a web page instead of data after 3 attempts"),
    ):
        client.version()
    assert api.count("/version") == 3


def test_client_says_at_once_that_a_plain_http_port_does_not_speak_tls(api: FakeCtGov) -> None:
    https = api.base_url.replace("http://", "https://")
    with (
        CtGovClient(base_url=https, min_interval_s=0, sleep=lambda _: None) as client,
        pytest.raises(ApiUnreachableError, match="does not speak TLS there") as caught,
    ):
        client.version()
    assert "WRONG_VERSION_NUMBER" in (caught.value.detail or "")
    assert api.count() == 0  # the TLS hello is not an HTTP request
    assert client.requests_made == 1


def test_client_retries_a_refused_connection_then_says_so(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now: connections to it are refused.
    with (
        CtGovClient(
            base_url=f"http://127.0.0.1:{port}/api/v2",
            max_attempts=2,
            min_interval_s=0,
            sleep=sleeps.append,
        ) as client,
        pytest.raises(ApiUnreachableError) as caught,
    ):
        client.version()
    assert str(caught.value).startswith(
        f"could not reach 127.0.0.1:{port}: the connection was refused after 2 attempts"
    )
    assert "Connection refused" in (caught.value.detail or "")
    assert client.requests_made == 2
    assert len(sleeps) == 1


def test_client_sees_the_bad_request_of_a_real_400(api: FakeCtGov, client: CtGovClient) -> None:
    api.inject("status", status=400, body="`filter.ids` is unknown parameter")
    with pytest.raises(ApiRequestError, match="unknown parameter") as caught:
        client.version()
    assert caught.value.status_code == 400
    assert api.count("/version") == 1

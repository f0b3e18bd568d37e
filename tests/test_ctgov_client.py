"""Unit tests of CtGovClient against respx-mocked responses built from real records.

No test touches the network, and none really sleeps: ``sleep`` and ``monotonic`` are a fake clock.
"""

from __future__ import annotations

import email.utils
import errno
import json
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

import trialwatch
from tests.fakes.ctgov_server import RECORDS_DIR, clone_record, load_records
from trialwatch.ctgov import (
    DEFAULT_BATCH_SIZE,
    STUDY_FIELDS,
    SUMMARY_FIELDS,
    UPDATED_FIELDS,
    CtGovClient,
    record_fingerprint,
)
from trialwatch.exceptions import (
    ApiRequestError,
    ApiUnavailableError,
    ApiUnreachableError,
    RecordError,
    ShortReadError,
    TransientFetchError,
)
from trialwatch.models import ApiVersion, FoundStudy, MissingStudy, StudyResult, StudySummary

BASE = "https://clinicaltrials.gov/api/v2"
ALIAS = "NCT02380456"  # listed in NCT02300909's nctIdAliases
CANONICAL = "NCT02300909"
ABSENT = "NCT09999999"

Record = dict[str, Any]


class FakeClock:
    """``monotonic`` + ``sleep`` that only move when slept: sleeps are recorded, never real."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def nct_id(record: Mapping[str, Any]) -> str:
    return str(record["protocolSection"]["identificationModule"]["nctId"])


def real_records() -> list[Record]:
    return load_records(RECORDS_DIR)


def thirteen_records() -> list[Record]:
    """The 11 real studies plus 2 DERIVED ones (clones of a real record, new ids)."""
    real = real_records()
    assert len(real) == 11
    return [*real, clone_record(real[0], "NCT90000001"), clone_record(real[1], "NCT90000002")]


def page(studies: Sequence[Mapping[str, Any]], token: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"studies": list(studies)}
    if token is not None:
        body["nextPageToken"] = token
    return httpx.Response(200, json=body)


def matches(record: Mapping[str, Any], ids: set[str]) -> bool:
    ident = record["protocolSection"]["identificationModule"]
    return ident["nctId"] in ids or not ids.isdisjoint(ident.get("nctIdAliases", ()))


def paging_server(
    records: Sequence[Record],
    *,
    per_page: int,
    empty_page_after: int | None = None,
    drop: Sequence[str] = (),
    count: int | None = 0,
) -> Callable[[httpx.Request], httpx.Response]:
    """A /studies handler that answers ``filter.ids`` with ``per_page`` studies per page
    (fewer than asked for), tokens ``t1``, ``t2``..., and optionally an empty page.

    With ``countTotal=true`` the first page says ``totalCount``: the studies matched, ``count``
    added (``None``: no totalCount at all). ``drop``: ids of studies matched and counted but
    left off the pages, as in a short read."""

    def handler(request: httpx.Request) -> httpx.Response:
        ids = set(request.url.params["filter.ids"].split(","))
        found = [r for r in records if matches(r, ids)]
        sent = [r for r in found if nct_id(r) not in drop]
        pages = [sent[i : i + per_page] for i in range(0, len(sent), per_page)] or [[]]
        if empty_page_after is not None:
            pages.insert(empty_page_after, [])
        token = request.url.params.get("pageToken")
        index = int(token[1:]) if token else 0
        next_token = f"t{index + 1}" if index + 1 < len(pages) else None
        response = page(pages[index], next_token)
        if index == 0 and request.url.params.get("countTotal") == "true" and count is not None:
            body = json.loads(response.content)
            return httpx.Response(200, json={**body, "totalCount": len(found) + count})
        return response

    return handler


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(clock: FakeClock) -> Iterator[Callable[..., CtGovClient]]:
    clients: list[CtGovClient] = []

    def make(**kwargs: Any) -> CtGovClient:
        options: dict[str, Any] = {
            "base_url": BASE,
            "min_interval_s": 0,
            "sleep": clock.sleep,
            "monotonic": clock.monotonic,
            **kwargs,
        }
        client = CtGovClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def found(results: Sequence[StudyResult]) -> dict[str, str]:
    return {r.requested_id: r.nct_id for r in results if isinstance(r, FoundStudy)}


def missing(results: Sequence[StudyResult]) -> list[str]:
    return [r.requested_id for r in results if isinstance(r, MissingStudy)]


# -- fetching studies ------------------------------------------------------------------------------


def test_thirteen_ids_take_exactly_one_request(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = thirteen_records()
    ids = [nct_id(r) for r in records]
    route = router.get("/studies").mock(side_effect=paging_server(records, per_page=1000))

    results = list(make_client().iter_studies(ids))

    assert route.call_count == 1
    params = route.calls.last.request.url.params
    assert int(params["pageSize"]) >= 13
    assert params["filter.ids"].split(",") == ids
    assert params["fields"] == STUDY_FIELDS
    assert params["format"] == "json"
    assert params["countTotal"] == "true"
    assert found(results) == {i: i for i in ids}
    assert missing(results) == []
    first = next(r for r in results if isinstance(r, FoundStudy))
    assert first.record == records[0]


def test_follows_next_page_token_through_short_and_empty_pages(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = thirteen_records()
    ids = [nct_id(r) for r in records]
    route = router.get("/studies").mock(
        side_effect=paging_server(records, per_page=4, empty_page_after=1)
    )

    results = list(make_client().iter_studies(ids))

    assert found(results) == {i: i for i in ids}
    assert missing(results) == []
    assert route.call_count == 5  # 4 + (empty) + 4 + 4 + 1
    first = dict(route.calls[0].request.url.params)
    assert "pageToken" not in first
    for n, call in enumerate(route.calls[1:], start=1):
        params = dict(call.request.url.params)
        assert params.pop("pageToken") == f"t{n}"
        assert params == first  # the same query every page, as the API requires


def test_results_stream_page_by_page(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = real_records()
    route = router.get("/studies").mock(side_effect=paging_server(records, per_page=2))
    client = make_client()

    results = client.iter_studies([nct_id(r) for r in records])
    assert route.call_count == 0  # lazy: nothing sent until iterated
    next(results)
    assert route.call_count == 1
    rest = list(results)
    assert len(rest) == len(records) - 1
    assert route.call_count == 6


def test_alias_is_found_under_its_canonical_id(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    router.get("/studies").mock(side_effect=paging_server(real_records(), per_page=10))

    results = list(make_client().iter_studies([ALIAS]))

    assert len(results) == 1
    result = results[0]
    assert isinstance(result, FoundStudy)
    assert (result.requested_id, result.nct_id) == (ALIAS, CANONICAL)
    assert nct_id(result.record) == CANONICAL


def test_alias_and_canonical_both_requested_are_both_accounted(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    router.get("/studies").mock(side_effect=paging_server(real_records(), per_page=10))

    results = list(make_client().iter_studies([CANONICAL, ALIAS]))

    assert found(results) == {CANONICAL: CANONICAL, ALIAS: CANONICAL}


def test_ids_not_returned_are_yielded_as_missing_after_the_batch(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = real_records()
    router.get("/studies").mock(side_effect=paging_server(records, per_page=10))
    ids = [ABSENT, nct_id(records[0]), "NCT09999998"]

    results = list(make_client().iter_studies(ids))

    assert results == [
        FoundStudy(
            nct_id(records[0]), nct_id(records[0]), records[0], record_fingerprint(records[0])
        ),
        MissingStudy(ABSENT, confirmed=True),
        MissingStudy("NCT09999998", confirmed=True),
    ]


def test_an_id_left_off_although_counted_is_an_unconfirmed_absence(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = thirteen_records()
    ids = [nct_id(r) for r in records]
    route = router.get("/studies").mock(
        side_effect=paging_server(records, per_page=1000, drop=[ids[4]])
    )

    results = list(make_client().iter_studies([*ids, ABSENT]))

    assert route.call_count == 1
    assert found(results) == {i: i for i in ids if i != ids[4]}
    # Short by one: the registry may well have either id, so neither absence is confirmed.
    assert [r for r in results if isinstance(r, MissingStudy)] == [
        MissingStudy(ids[4], confirmed=False),
        MissingStudy(ABSENT, confirmed=False),
    ]


def test_the_count_is_checked_against_every_page_of_the_batch(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = thirteen_records()
    ids = [nct_id(r) for r in records]
    router.get("/studies").mock(
        side_effect=paging_server(records, per_page=4, empty_page_after=1, drop=[ids[9]])
    )
    client = make_client(batch_size=7)

    results = list(client.iter_studies([*ids, ABSENT]))

    # Batch 1 (ids 0-6) arrived whole over three pages; batch 2 (7-12 and ABSENT) lost ids[9].
    assert [r for r in results if isinstance(r, MissingStudy)] == [
        MissingStudy(ids[9], confirmed=False),
        MissingStudy(ABSENT, confirmed=False),
    ]
    router.get("/studies").mock(side_effect=paging_server(records, per_page=4, empty_page_after=1))
    assert [r for r in client.iter_studies([*ids, ABSENT]) if isinstance(r, MissingStudy)] == [
        MissingStudy(ABSENT, confirmed=True)
    ]


@pytest.mark.parametrize(("count", "confirmed"), [(None, False), (2, False), (-1, True)])
def test_an_absence_is_confirmed_only_by_a_count_that_all_arrived(
    router: respx.MockRouter,
    make_client: Callable[..., CtGovClient],
    count: int | None,
    confirmed: bool,
) -> None:
    # None: no totalCount at all; 2: two more counted than sent; -1: fewer counted than sent.
    records = real_records()
    router.get("/studies").mock(side_effect=paging_server(records, per_page=10, count=count))
    results = list(make_client().iter_studies([nct_id(records[0]), nct_id(records[1]), ABSENT]))
    assert [r for r in results if isinstance(r, MissingStudy)] == [
        MissingStudy(ABSENT, confirmed=confirmed)
    ]


def test_an_alias_asked_with_its_canonical_id_is_one_study_counted_once(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    router.get("/studies").mock(side_effect=paging_server(real_records(), per_page=10))
    results = list(make_client().iter_studies([CANONICAL, ALIAS, ABSENT]))
    assert found(results) == {CANONICAL: CANONICAL, ALIAS: CANONICAL}
    assert [r for r in results if isinstance(r, MissingStudy)] == [MissingStudy(ABSENT)]


def test_a_study_without_a_usable_id_does_not_count_as_arrived(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = real_records()
    junk = {"protocolSection": {"identificationModule": {"nctId": "bogus"}}}
    router.get("/studies").mock(
        return_value=httpx.Response(200, json={"studies": [records[0], junk], "totalCount": 2})
    )
    results = list(make_client().iter_studies([nct_id(records[0]), ABSENT]))
    assert [r for r in results if isinstance(r, MissingStudy)] == [
        MissingStudy(ABSENT, confirmed=False)
    ]


def test_ids_are_batched(router: respx.MockRouter, make_client: Callable[..., CtGovClient]) -> None:
    records = thirteen_records()[:12]
    ids = [nct_id(r) for r in records]
    route = router.get("/studies").mock(side_effect=paging_server(records, per_page=1000))

    results = list(make_client(batch_size=5).iter_studies(ids))

    assert route.call_count == 3
    sent = [call.request.url.params["filter.ids"].split(",") for call in route.calls]
    assert sent == [ids[0:5], ids[5:10], ids[10:12]]
    assert [call.request.url.params["pageSize"] for call in route.calls] == ["6", "6", "3"]
    assert found(results) == {i: i for i in ids}


def test_the_default_batch_is_as_large_as_a_safe_url_allows(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    ids = [f"NCT{10000000 + i:08d}" for i in range(1200)]
    token = "ZVt07cGHkvI2wRk2CJf6_LLq14bEL8swd7KrgP4dnDeTsPkw"  # a real one (page-example.json)
    route = router.get("/studies").mock(
        side_effect=lambda request: page([], None if "pageToken" in request.url.params else token)
    )

    results = list(make_client().iter_studies(ids))

    assert DEFAULT_BATCH_SIZE == 500
    assert len(results) == 1200
    first_pages = [c.request for c in route.calls if "pageToken" not in c.request.url.params]
    assert [len(r.url.params["filter.ids"].split(",")) for r in first_pages] == [500, 500, 200]
    # Literal commas: 12 bytes per id, and the whole URL well under 8 KB, page token included.
    assert f"filter.ids={ids[0]},{ids[1]}," in str(first_pages[0].url)
    assert len(str(first_pages[0].url)) == 127 + 12 * 500 == 6127
    assert max(len(str(c.request.url)) for c in route.calls) == 6127 + len("&pageToken=") + 48


def test_a_batch_whose_url_is_too_long_is_asked_in_halves(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = thirteen_records()
    ids = [nct_id(r) for r in records]
    answer = paging_server(records, per_page=1000)

    def handler(request: httpx.Request) -> httpx.Response:
        if len(request.url.params["filter.ids"].split(",")) > 4:
            return httpx.Response(414, text="URI Too Long")
        return answer(request)

    route = router.get("/studies").mock(side_effect=handler)

    results = list(make_client(batch_size=13).iter_studies(ids))

    assert [r.requested_id for r in results] == ids
    sizes = [len(c.request.url.params["filter.ids"].split(",")) for c in route.calls]
    assert sizes == [13, 6, 3, 3, 7, 3, 4]

    router.get("/studies").mock(return_value=httpx.Response(414, text="URI Too Long"))
    with pytest.raises(ApiRequestError) as caught:
        list(make_client(batch_size=2).iter_studies(ids[:2]))
    assert caught.value.status_code == 414


def test_ids_are_normalized_and_deduplicated_in_order(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    route = router.get("/studies").mock(return_value=page([]))

    results = list(make_client().iter_studies([" nct00000002", "NCT00000001", "NCT00000002"]))

    assert route.calls.last.request.url.params["filter.ids"] == "NCT00000002,NCT00000001"
    assert [r.requested_id for r in results if isinstance(r, MissingStudy)] == [
        "NCT00000002",
        "NCT00000001",
    ]


def test_no_ids_no_request(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    route = router.get("/studies").mock(return_value=page([]))
    assert list(make_client().iter_studies([])) == []
    assert route.call_count == 0


@pytest.mark.parametrize("bad", ["NCT123", "NCT0230090X", "ISRCTN12345678", "", "NCT023009091"])
def test_malformed_id_is_refused_before_any_request(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], bad: str
) -> None:
    route = router.get("/studies").mock(return_value=page([]))
    client = make_client()

    with pytest.raises(ApiRequestError, match="is not an NCT id") as caught:
        client.iter_studies([CANONICAL, bad])  # raised at call time, not on iteration

    assert repr(bad) in str(caught.value)
    assert route.call_count == 0
    assert client.requests_made == 0


def test_a_single_string_is_not_a_list_of_ids(make_client: Callable[..., CtGovClient]) -> None:
    with pytest.raises(TypeError):
        make_client().iter_studies(CANONICAL)


def test_studies_without_usable_nct_id_or_not_requested_are_skipped(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = real_records()
    junk: list[Any] = [
        {"protocolSection": {"identificationModule": {}}},
        {"protocolSection": {"identificationModule": {"nctId": "bogus"}}},
        {"hasResults": False},
        "not a study",
        records[1],  # returned although not requested
    ]
    router.get("/studies").mock(return_value=page([*junk, records[0]]))

    results = list(make_client().iter_studies([nct_id(records[0])]))

    assert results == [
        FoundStudy(
            nct_id(records[0]), nct_id(records[0]), records[0], record_fingerprint(records[0])
        )
    ]


def test_a_study_is_handed_over_as_served_and_parsed_only_when_read(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    record = real_records()[0]
    study = json.dumps(record, indent=1, ensure_ascii=True).encode()  # spacing CT.gov may use
    body = b'{ "totalCount": 1,\n "studies": [ ' + study + b" ] }"
    router.get("/studies").mock(return_value=httpx.Response(200, content=body))

    (found,) = make_client().iter_studies([nct_id(record)])

    assert isinstance(found, FoundStudy)
    assert found.body == study  # byte for byte, cut out of the page
    assert found.fingerprint == record_fingerprint(study)
    assert found.fingerprint != record_fingerprint(record)  # spacing moves it; nothing else does
    assert found.record == record


def test_a_study_whose_identification_is_not_an_object_is_skipped(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = real_records()
    junk = [
        {"protocolSection": {"identificationModule": ["NCT00000001"]}},
        {"protocolSection": "NCT00000001"},
        [nct_id(records[0])],
    ]
    router.get("/studies").mock(return_value=page([*junk, records[0]]))

    assert found(list(make_client().iter_studies([nct_id(records[0])]))) == {
        nct_id(records[0]): nct_id(records[0])
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"studies": {}}', "unexpected JSON"),
        (b'{"studies": [], "totalCount": -1}', "unexpected JSON"),
        (b'{"studies": [], "totalCount": true}', "unexpected JSON"),
        (b'{"studies": [], "nextPageToken": 5}', "unexpected JSON"),
        (b'[{"studies": []}]', "unexpected JSON"),
        (b'{"studies": [{"protocolSection": }]}', "not valid JSON"),
        (b'{"studies": [NaN]}', "not valid JSON"),
        (b'{"studies": [], "nextPageToken": "\xff"}', "not valid JSON"),  # not UTF-8
    ],
)
def test_a_garbled_page_is_retried_then_reported(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], body: bytes, reason: str
) -> None:
    route = router.get("/studies").mock(return_value=httpx.Response(200, content=body))
    with pytest.raises(ApiUnavailableError) as caught:
        list(make_client(max_attempts=2).iter_studies([CANONICAL]))
    assert route.call_count == 2
    assert reason in (caught.value.detail or "")


def test_a_lone_surrogate_escape_in_one_study_leaves_the_page_readable(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    """JSON text may escape half a surrogate pair alone (``"\\ud800"``); msgspec and orjson
    refuse the whole page for it. Not assumed of the real server, but allowed by JSON: one
    such title must not leave every other study of the batch unchecked at every poll. The page
    is read by the standard library, the lone half becomes U+FFFD (as the normalizer reads
    it), and an escaped pair stays the character it stands for."""
    records = real_records()[:3]
    poisoned, paired = json.loads(json.dumps(records[1])), json.loads(json.dumps(records[2]))
    poisoned["protocolSection"]["identificationModule"]["briefTitle"] = "Half \ud800 a pair"
    paired["protocolSection"]["identificationModule"]["briefTitle"] = "A pair \U0001f600"
    body = json.dumps({"studies": [records[0], poisoned, paired], "totalCount": 3}).encode()
    assert b"\\ud800" in body and b"\\ud83d\\ude00" in body  # json.dumps escapes them
    route = router.get("/studies").mock(return_value=httpx.Response(200, content=body))

    results = list(make_client(max_attempts=2).iter_studies([nct_id(r) for r in records]))

    assert route.call_count == 1
    assert set(found(results)) == {nct_id(r) for r in records}
    titles = {
        result.requested_id: json.loads(result.body)["protocolSection"]["identificationModule"][
            "briefTitle"
        ]
        for result in results
        if isinstance(result, FoundStudy)
    }
    assert titles[nct_id(records[1])] == "Half \ufffd a pair"
    assert titles[nct_id(records[2])] == "A pair \U0001f600"
    assert (
        titles[nct_id(records[0])]
        == records[0]["protocolSection"]["identificationModule"]["briefTitle"]
    )


def test_a_listing_with_bytes_that_are_not_utf8_is_retried_then_reported(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    study = b'{"protocolSection": {"identificationModule": {"nctId": "NCT0000000\xff"}}}'
    body = b'{"totalCount": 1, "studies": [' + study + b"]}"
    route = router.get("/studies").mock(return_value=httpx.Response(200, content=body))
    with pytest.raises(ApiUnavailableError) as caught:
        make_client(max_attempts=2).updated_since(date(2026, 11, 1))
    assert route.call_count == 2
    assert "not valid JSON" in (caught.value.detail or "")


def test_a_study_whose_id_is_not_utf8_or_whose_aliases_are_odd_is_handled(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = real_records()
    odd = json.loads(json.dumps(records[0]))
    odd["protocolSection"]["identificationModule"]["nctIdAliases"] = 5
    bad_id = b'{"protocolSection": {"identificationModule": {"nctId": "NCT0\xff"}}}'
    body = b'{"studies": [' + bad_id + b"," + json.dumps(odd).encode() + b"]}"
    router.get("/studies").mock(return_value=httpx.Response(200, content=body))

    results = list(make_client().iter_studies([nct_id(records[0]), ABSENT]))

    assert found(results) == {nct_id(records[0]): nct_id(records[0])}
    assert missing(results) == [ABSENT]


def test_found_studies_compare_without_raising() -> None:
    unreadable = FoundStudy(CANONICAL, CANONICAL, body=b"[1]")
    assert unreadable != FoundStudy(ABSENT, ABSENT, body=b"{}")
    assert unreadable == FoundStudy(CANONICAL, CANONICAL, body=b"[1]")
    assert unreadable != FoundStudy(CANONICAL, CANONICAL, body=b"[2]")
    record = real_records()[0]
    as_dict = FoundStudy(CANONICAL, CANONICAL, record, "f")
    assert as_dict == FoundStudy(
        CANONICAL, CANONICAL, fingerprint="f", body=json.dumps(record).encode()
    )


def test_a_found_study_that_cannot_be_read_says_so_when_read() -> None:
    for body, why in [(b"[1, 2]", "expected a JSON object"), (b"{", "not readable as JSON")]:
        study = FoundStudy(CANONICAL, CANONICAL, body=body)
        with pytest.raises(RecordError, match=why):
            _ = study.record


def test_a_repeated_page_token_does_not_loop_forever(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    router.get("/studies").mock(return_value=page([], "same"))
    with pytest.raises(ApiUnavailableError, match="sent pages that never end") as caught:
        list(make_client().iter_studies([CANONICAL]))
    assert "same nextPageToken" in (caught.value.detail or "")


def test_real_example_pages_are_understood(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    first = json.loads((RECORDS_DIR / "page-example.json").read_text())
    second = json.loads((RECORDS_DIR / "page-example-next.json").read_text())
    second.pop("nextPageToken")  # make it the last page
    ids = [nct_id(s) for s in first["studies"] + second["studies"]]
    route = router.get("/studies").mock(
        side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)]
    )

    results = list(make_client().iter_studies(ids))

    assert found(results) == {i: i for i in ids}
    assert route.calls[1].request.url.params["pageToken"] == first["nextPageToken"]


def test_each_found_study_carries_the_fingerprint_of_its_record_as_served(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = real_records()
    alias_record = next(r for r in records if nct_id(r) == CANONICAL)
    router.get("/studies").mock(side_effect=paging_server(records, per_page=10))
    client = make_client()

    first = [r for r in client.iter_studies([CANONICAL, ALIAS]) if isinstance(r, FoundStudy)]
    again = [r for r in client.iter_studies([CANONICAL]) if isinstance(r, FoundStudy)]

    assert [r.fingerprint for r in first] == [record_fingerprint(alias_record)] * 2
    assert again[0].fingerprint == first[0].fingerprint
    assert len(first[0].fingerprint or "") == 32


def test_the_fingerprint_covers_the_whole_record_and_its_key_order() -> None:
    record = real_records()[0]
    same = json.loads(json.dumps(record))
    assert record_fingerprint(same) == record_fingerprint(record)
    moved = json.loads(json.dumps(record))
    moved["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["type"] = "ESTIMATED!"
    assert record_fingerprint(moved) != record_fingerprint(record)
    reordered = dict(reversed(list(record.items())))
    assert record_fingerprint(reordered) != record_fingerprint(record)
    huge = {**record, "x": 2**70}  # orjson cannot write it; the fingerprint still can
    assert record_fingerprint(huge) != record_fingerprint(record)


# -- version -----------------------------------------------------------------------------------


def test_version(router: respx.MockRouter, make_client: Callable[..., CtGovClient]) -> None:
    router.get("/version").mock(
        return_value=httpx.Response(
            200, json={"apiVersion": "2.0.5", "dataTimestamp": "2026-09-04T09:00:06"}
        )
    )
    assert make_client().version() == ApiVersion("2.0.5", "2026-09-04T09:00:06")


def test_trailing_slash_in_base_url_is_tolerated(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    route = router.get("/version").mock(
        return_value=httpx.Response(200, json={"apiVersion": "2.0.5", "dataTimestamp": "x"})
    )
    make_client(base_url=BASE + "/").version()
    assert route.calls.last.request.url.path == "/api/v2/version"


@pytest.mark.parametrize(
    "base_url",
    [
        BASE,
        BASE + "/",
        "http://127.0.0.1:8710/api/v2",
        "http://127.0.0.1:8710",  # no path at all (a mistake, that must say so, not crash)
        "https://user:pass@mirror.example:8443/ctgov/api/v2/",
    ],
)
def test_each_request_goes_where_httpx_joins_it_onto_the_base_url(
    base_url: str, make_client: Callable[..., CtGovClient]
) -> None:
    """The client builds each request's absolute URL itself (httpx would parse a batch's 7 KB
    query twice): it must be the URL httpx's own base_url joining makes, query and all."""
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.path.endswith("/version"):
            return httpx.Response(200, json={"apiVersion": "2.0.5", "dataTimestamp": "x"})
        return httpx.Response(200, json={"studies": [], "totalCount": 0})

    ids = ["NCT01234567", "NCT07654321"]
    with respx.mock(assert_all_called=False) as mock:
        mock.route().mock(side_effect=answer)
        client = make_client(base_url=base_url)
        client.version()
        list(client.iter_studies(ids))
        assert len(seen) == 2, seen
        ours = [str(url) for url in seen]
        query = seen[1].query.decode("ascii")
        assert query.startswith("filter.ids=NCT01234567,NCT07654321&")  # commas as they are
        seen.clear()
        with httpx.Client(base_url=base_url) as plain:  # the same paths, joined by httpx
            plain.get("/version")
            plain.get(f"/studies?{query}")
    assert ours == [str(url) for url in seen]


def test_headers_identify_trialwatch(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    route = router.get("/version").mock(
        return_value=httpx.Response(200, json={"apiVersion": "2.0.5", "dataTimestamp": "x"})
    )
    make_client().version()
    headers = route.calls.last.request.headers
    assert f"trialwatch/{trialwatch.__version__}" in headers["User-Agent"]
    assert headers["Accept"] == "application/json"

    make_client(user_agent="custom/1.0").version()
    assert route.calls.last.request.headers["User-Agent"] == "custom/1.0"


# -- retries -------------------------------------------------------------------------------------

VERSION_OK = httpx.Response(200, json={"apiVersion": "2.0.5", "dataTimestamp": "2026-11-20"})


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.Response(500, text="Internal Server Error"),
        httpx.Response(502, text="Bad Gateway"),
        httpx.Response(503, text="Service Unavailable"),
        httpx.Response(504, text="Gateway Timeout"),
        httpx.Response(429, text="Too Many Requests"),
        httpx.Response(200, html="<html><body>Down for maintenance</body></html>"),
        httpx.Response(200, content=b'{"studies": [{"protocolSection": ', headers={"X": "1"}),
        httpx.Response(200, content=b"\xff\xfe garbage", headers={"Content-Type": "text/plain"}),
        httpx.Response(200, json=[]),
        httpx.Response(200, json={"studies": "none"}),
        httpx.Response(200, json={"studies": [], "nextPageToken": 7}),
        httpx.Response(200, json={"studies": [], "totalCount": "7"}),
        httpx.Response(200, json={"studies": [], "totalCount": -1}),
        httpx.Response(204),
    ],
    ids=lambda f: type(f).__name__ if isinstance(f, Exception) else str(f.status_code),
)
def test_transient_failures_are_retried(
    router: respx.MockRouter,
    make_client: Callable[..., CtGovClient],
    clock: FakeClock,
    failure: httpx.Response | Exception,
) -> None:
    records = real_records()
    route = router.get("/studies").mock(side_effect=[failure, failure, page(records[:1])])
    client = make_client()

    results = list(client.iter_studies([nct_id(records[0])]))

    assert found(results) == {nct_id(records[0]): nct_id(records[0])}
    assert route.call_count == 3
    assert client.requests_made == 3
    assert len(clock.sleeps) == 2  # one backoff wait per retry, through the injected sleep


@pytest.mark.parametrize(
    "body",
    [[], {"apiVersion": "2.0.5"}, {"apiVersion": 2, "dataTimestamp": "x"}, "2.0.5"],
)
def test_version_of_the_wrong_shape_is_transient(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], body: Any
) -> None:
    router.get("/version").mock(side_effect=[httpx.Response(200, json=body), VERSION_OK])
    assert make_client().version().api_version == "2.0.5"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock, status: int
) -> None:
    router.get("/version").mock(
        side_effect=[httpx.Response(status, headers={"Retry-After": "7"}), VERSION_OK]
    )
    make_client().version()
    assert clock.sleeps == [7.0]


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_of_zero_waits_the_backoff_still(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock, status: int
) -> None:
    """``Retry-After: 0`` from a server that is turning us away: the doubling backoff is still
    waited, rather than asking again at once, try after try."""
    router.get("/version").mock(
        side_effect=[httpx.Response(status, headers={"Retry-After": "0"})] * 3 + [VERSION_OK]
    )
    make_client(backoff_initial_s=1, max_attempts=4).version()
    assert len(clock.sleeps) == 3
    for attempt, slept in enumerate(clock.sleeps):
        assert 0.75 * 2**attempt <= slept <= 2**attempt


def test_retry_after_above_the_cap_gives_up_at_once_and_never_retries_early(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock
) -> None:
    route = router.get("/version").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "86400"}), VERSION_OK]
    )
    with pytest.raises(ApiUnavailableError) as caught:
        make_client(max_retry_after_s=30).version()
    assert str(caught.value) == (
        "clinicaltrials.gov asked us to come back in 24.0 h (HTTP 429 with Retry-After), more "
        "than `[api] max_retry_after_s` = 30s; gave up: try again later"
    )
    assert route.call_count == 1
    assert clock.sleeps == []  # neither waited out holding the lock, nor retried early


def test_retry_after_http_date_is_honoured_and_capped(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock
) -> None:
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    router.get("/version").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": soon}),
            httpx.Response(503, headers={"Retry-After": past}),
            VERSION_OK,
            httpx.Response(503, headers={"Retry-After": later}),
        ]
    )
    client = make_client(max_retry_after_s=60, backoff_initial_s=1)
    client.version()
    assert 17 <= clock.sleeps[0] <= 20
    # A date already past is no reason to come straight back: the backoff of a second try
    # (2 s, jittered by at most a quarter) is waited instead.
    assert 1.5 <= clock.sleeps[1] <= 2.0
    with pytest.raises(ApiUnavailableError, match=r"come back in 1[12]\d min"):
        client.version()


def test_backoff_is_exponential_with_full_jitter_and_capped(
    router: respx.MockRouter,
    make_client: Callable[..., CtGovClient],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    router.get("/version").mock(side_effect=[httpx.Response(500)] * 4 + [VERSION_OK])
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high  # the top of the jitter window

    monkeypatch.setattr("tenacity.wait.random.uniform", uniform)
    make_client(backoff_initial_s=1, backoff_max_s=3).version()

    assert bounds == [(0, 1), (0, 2), (0, 3), (0, 3)]
    assert clock.sleeps == [1, 2, 3, 3]


def test_jitter_waits_stay_within_the_window(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock
) -> None:
    router.get("/version").mock(side_effect=[httpx.Response(502)] * 4 + [VERSION_OK])
    make_client(backoff_initial_s=2, backoff_max_s=5).version()
    assert len(clock.sleeps) == 4
    for wait, high in zip(clock.sleeps, [2, 4, 5, 5], strict=True):
        assert 0 <= wait <= high


def test_exhausted_retries_raise_transient_fetch_error(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock
) -> None:
    route = router.get("/studies").mock(return_value=httpx.Response(503))
    client = make_client(max_attempts=3, throttle_budget_s=0)  # the throttle budget: apart

    with pytest.raises(ApiUnavailableError) as caught:
        list(client.iter_studies([CANONICAL]))

    assert str(caught.value) == (
        "clinicaltrials.gov is down or failing: HTTP 503 after 3 attempts; try again later"
    )
    assert caught.value.detail == (
        f"GET {BASE}/studies failed after 3 attempts: HTTP 503 Service Unavailable"
    )
    assert isinstance(caught.value.__cause__, TransientFetchError)
    assert route.call_count == 3
    assert client.requests_made == 3
    assert len(clock.sleeps) == 2


def test_exhausted_retries_keep_the_underlying_cause(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    router.get("/version").mock(
        side_effect=connect_error(ConnectionRefusedError(111, "Connection refused"))
    )
    with pytest.raises(ApiUnreachableError, match="refused after 2 attempts") as caught:
        make_client(max_attempts=2).version()
    assert "after 2 attempts: ConnectError: " in (caught.value.detail or "")
    cause = caught.value.__cause__
    assert cause is not None
    assert isinstance(cause.__cause__, httpx.ConnectError)


def test_one_attempt_means_no_retry(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock
) -> None:
    route = router.get("/version").mock(return_value=httpx.Response(500))
    with pytest.raises(TransientFetchError, match="HTTP 500 after 1 attempt; "):
        make_client(max_attempts=1).version()
    assert route.call_count == 1
    assert clock.sleeps == []


def connect_error(cause: BaseException) -> httpx.ConnectError:
    """A ConnectError the way httpx raises it: message from, and chained to, the OS error.

    respx replaces ``__cause__`` with its own SideEffectError, so these tests hold the client to
    recognizing the words; the real chains meet it against the loopback stand-in (refused, not
    TLS) and a patched ``socket.getaddrinfo`` (a name that does not resolve)."""
    error = httpx.ConnectError(str(cause))
    error.__cause__ = cause
    return error


OFFLINE = "could not reach clinicaltrials.gov: check the network or `[api] base_url`"
UNTRUSTED = (
    "could not open a secure connection to clinicaltrials.gov: its certificate is not trusted; "
    "a proxy or TLS interception may be in the way"
)


def test_a_name_that_does_not_resolve_fails_at_once_in_plain_words(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock
) -> None:
    route = router.get("/version").mock(
        side_effect=httpx.ConnectError("[Errno -2] Name or service not known")
    )
    client = make_client(max_attempts=5)

    with pytest.raises(ApiUnreachableError) as caught:
        client.version()

    assert str(caught.value) == OFFLINE
    assert route.call_count == 1
    assert clock.sleeps == []  # not a minute of backoff for something that will not heal
    assert caught.value.detail == (
        f"GET {BASE}/version: ConnectError: [Errno -2] Name or service not known"
    )
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_a_real_name_resolution_failure_is_recognized(
    make_client: Callable[..., CtGovClient], monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # The real httpx/httpcore path down to socket.getaddrinfo, which fails as offline.
    calls: list[str] = []

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    client = make_client(base_url="https://ctgov.example.invalid/api/v2")

    with pytest.raises(ApiUnreachableError) as caught:
        client.version()

    assert str(caught.value) == (
        "could not reach ctgov.example.invalid: check the network or `[api] base_url`"
    )
    assert calls == ["ctgov.example.invalid"]
    assert clock.sleeps == []
    chain = [caught.value.__cause__, caught.value.__cause__.__cause__]
    assert any(isinstance(e, httpx.ConnectError) for e in chain)


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (connect_error(OSError(errno.ENETUNREACH, "Network is unreachable")), OFFLINE),
        (connect_error(OSError(errno.EHOSTUNREACH, "No route to host")), OFFLINE),
        (
            connect_error(
                ssl.SSLCertVerificationError(
                    1,
                    "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                    "self-signed certificate in certificate chain (_ssl.c:1006)",
                )
            ),
            UNTRUSTED,
        ),
        (
            httpx.ConnectError(
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get "
                "local issuer certificate (_ssl.c:1006)"
            ),
            UNTRUSTED,
        ),
    ],
    ids=["no-network", "no-route", "untrusted-chained", "untrusted-message"],
)
def test_what_cannot_heal_is_said_at_once(
    router: respx.MockRouter,
    make_client: Callable[..., CtGovClient],
    clock: FakeClock,
    failure: Exception,
    message: str,
) -> None:
    route = router.get("/studies").mock(side_effect=failure)
    with pytest.raises(ApiUnreachableError) as caught:
        list(make_client().iter_studies([CANONICAL]))
    assert str(caught.value) == message
    assert str(failure) in (caught.value.detail or "")
    assert caught.value.__cause__ is failure
    assert route.call_count == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("failure", "error", "message"),
    [
        (
            connect_error(ConnectionRefusedError(111, "Connection refused")),
            ApiUnreachableError,
            "could not reach clinicaltrials.gov: the connection was refused after 3 attempts; "
            "check `[api] base_url`, or try again later",
        ),
        (
            httpx.ConnectTimeout("timed out"),
            ApiUnreachableError,
            "could not reach clinicaltrials.gov: no answer to connect after 3 attempts; "
            "check the network, a firewall or `[api] base_url`",
        ),
        (
            httpx.ProxyError("502 Bad Gateway"),
            ApiUnreachableError,
            "could not reach clinicaltrials.gov through the proxy after 3 attempts; "
            "check the proxy settings (HTTPS_PROXY, ALL_PROXY)",
        ),
        (
            httpx.ReadTimeout("read timed out"),
            ApiUnavailableError,
            "clinicaltrials.gov did not answer in time after 3 attempts; try again later",
        ),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            ApiUnavailableError,
            "the connection to clinicaltrials.gov kept breaking off after 3 attempts; "
            "check the network or a proxy, or try again later",
        ),
        (
            httpx.Response(502, text="Bad Gateway"),
            ApiUnavailableError,
            "clinicaltrials.gov is down or failing: HTTP 502 after 3 attempts; try again later",
        ),
        (
            httpx.Response(429),
            ApiUnavailableError,
            "clinicaltrials.gov asked us to slow down: HTTP 429 after 3 attempts; "
            "try again later, or raise `[api] min_interval_s`",
        ),
        (
            httpx.Response(200, html="<html><body>Down for maintenance</body></html>"),
            ApiUnavailableError,
            "clinicaltrials.gov sent a web page instead of data after 3 attempts "
            "(maintenance?); try again later",
        ),
        (
            httpx.Response(200, content=b"\xff\xfe garbage"),
            ApiUnavailableError,
            "clinicaltrials.gov sent something that is not the data asked for after 3 attempts; "
            "try again later",
        ),
    ],
    ids=lambda v: "" if isinstance(v, str | type) else repr(v)[:40],
)
def test_what_can_heal_is_retried_then_said_in_one_plain_line(
    router: respx.MockRouter,
    make_client: Callable[..., CtGovClient],
    failure: httpx.Response | Exception,
    error: type[Exception],
    message: str,
) -> None:
    route = router.get("/version").mock(side_effect=[failure] * 3)
    with pytest.raises(error) as caught:
        make_client(max_attempts=3, throttle_budget_s=0).version()
    assert str(caught.value) == message
    assert "\n" not in message
    assert route.call_count == 3
    detail = getattr(caught.value, "detail", None)
    assert detail is not None
    assert detail.startswith(f"GET {BASE}/version failed after 3 attempts: ")


def test_bad_request_is_not_retried(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock
) -> None:
    route = router.get("/studies").mock(
        return_value=httpx.Response(400, text="`query.recrs` is unknown parameter")
    )
    client = make_client()

    with pytest.raises(ApiRequestError, match=r"`query\.recrs` is unknown parameter") as caught:
        list(client.iter_studies([CANONICAL]))

    assert caught.value.status_code == 400
    assert "HTTP 400" in str(caught.value)
    assert route.call_count == 1
    assert clock.sleeps == []


def test_not_found_is_not_retried(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    route = router.get("/version").mock(return_value=httpx.Response(404, text="Not Found"))
    with pytest.raises(ApiRequestError) as caught:
        make_client().version()
    assert caught.value.status_code == 404
    assert route.call_count == 1


def test_long_error_bodies_are_truncated(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    router.get("/version").mock(return_value=httpx.Response(400, text="x" * 5000))
    with pytest.raises(ApiRequestError) as caught:
        make_client().version()
    assert 300 <= len(str(caught.value)) < 450


def test_credentials_in_base_url_never_reach_messages(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    secret_base = "https://user:s3cret@clinicaltrials.gov/api/v2"
    router.get("/version").mock(return_value=httpx.Response(500))
    router.get("/studies").mock(return_value=httpx.Response(403, text="nope"))
    client = make_client(base_url=secret_base, max_attempts=2)

    with pytest.raises(TransientFetchError) as transient:
        client.version()
    with pytest.raises(ApiRequestError) as refused:
        list(client.iter_studies([CANONICAL]))

    assert isinstance(transient.value, ApiUnavailableError)
    for message in (str(transient.value), transient.value.detail or "", str(refused.value)):
        assert "s3cret" not in message
        assert "user" not in message
    assert "https://clinicaltrials.gov/api/v2/version" in (transient.value.detail or "")
    assert "https://clinicaltrials.gov/api/v2/studies" in str(refused.value)


# -- pacing and construction ------------------------------------------------------------------


def test_requests_are_paced(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock
) -> None:
    router.get("/version").mock(return_value=VERSION_OK)
    client = make_client(min_interval_s=1.0)

    client.version()
    assert clock.sleeps == []  # the first request never waits
    clock.now += 0.25
    client.version()
    assert clock.sleeps == [pytest.approx(0.75)]
    clock.now += 5
    client.version()
    assert clock.sleeps == [pytest.approx(0.75)]  # long enough since the last start
    assert client.requests_made == 3


def test_pacing_applies_to_every_page(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient], clock: FakeClock
) -> None:
    records = real_records()
    router.get("/studies").mock(side_effect=paging_server(records, per_page=5))
    list(make_client(min_interval_s=1.0).iter_studies([nct_id(r) for r in records]))
    assert clock.sleeps == [pytest.approx(1.0)] * 2  # three pages, two waits


def test_client_is_a_context_manager(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get("/version").mock(return_value=VERSION_OK)
    with CtGovClient(base_url=BASE, sleep=clock.sleep, monotonic=clock.monotonic) as client:
        assert client.version().api_version == "2.0.5"
    with pytest.raises(RuntimeError):
        client.version()  # closed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "ftp://example.org/api/v2"},
        {"base_url": "not a url"},
        {"batch_size": 0},
        {"batch_size": 1001},
        {"max_attempts": 0},
        {"timeout_s": 0},
        {"min_interval_s": -1},
        {"base_url": "https://clinicaltrials.gov/api/v2#frag"},
        {"base_url": "https://clinicaltrials.gov/api/v2?key=1"},
        {"base_url": "https://clinicaltrials.gov/api/v2?"},
    ],
)
def test_unusable_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        CtGovClient(**{"base_url": BASE, **kwargs})


# -- searches and update listings ------------------------------------------------------------------


def summary_of(record: Mapping[str, Any]) -> Record:
    """The record as CT.gov serves it with SUMMARY_FIELDS: only those leaves, nested."""
    ps = record["protocolSection"]
    ident, status = ps["identificationModule"], ps["statusModule"]
    out: Record = {
        "identificationModule": {
            k: ident[k] for k in ("nctId", "briefTitle", "acronym") if k in ident
        },
        "statusModule": {
            "overallStatus": status["overallStatus"],
            "studyFirstPostDateStruct": {"date": status["studyFirstPostDateStruct"]["date"]},
            "lastUpdatePostDateStruct": {"date": status["lastUpdatePostDateStruct"]["date"]},
        },
        "sponsorCollaboratorsModule": {
            "leadSponsor": {"name": ps["sponsorCollaboratorsModule"]["leadSponsor"]["name"]}
        },
    }
    if "phases" in ps.get("designModule", {}):
        out["designModule"] = {"phases": ps["designModule"]["phases"]}
    return {"protocolSection": out}


def expected_summary(record: Mapping[str, Any]) -> StudySummary:
    ps = record["protocolSection"]
    ident, status = ps["identificationModule"], ps["statusModule"]
    return StudySummary(
        nct_id=ident["nctId"],
        brief_title=ident["briefTitle"],
        acronym=ident.get("acronym"),
        phases=tuple(ps.get("designModule", {}).get("phases", ())),
        overall_status=status["overallStatus"],
        lead_sponsor=ps["sponsorCollaboratorsModule"]["leadSponsor"]["name"],
        first_posted=status["studyFirstPostDateStruct"]["date"],
        last_update_posted=status["lastUpdatePostDateStruct"]["date"],
    )


def listing_server(
    studies: Sequence[Mapping[str, Any]],
    *,
    per_page: int,
    drop: Sequence[str] = (),
    count: int | None = 0,
    repeat_first: bool = False,
) -> Callable[[httpx.Request], httpx.Response]:
    """A /studies handler paging over ``studies`` whatever the query, ``per_page`` a page.

    ``totalCount`` on the first page (with countTotal=true): the studies, ``count`` added
    (``None``: none). ``drop``: counted but never sent; ``repeat_first``: the first study is sent
    again at the start of the second page, as a registry shifting between pages might."""

    def handler(request: httpx.Request) -> httpx.Response:
        sent = [s for s in studies if nct_id(s) not in drop]
        pages = [sent[i : i + per_page] for i in range(0, len(sent), per_page)] or [[]]
        if repeat_first and len(pages) > 1:
            pages[1] = [sent[0], *pages[1]]
        token = request.url.params.get("pageToken")
        index = int(token[1:]) if token else 0
        body: dict[str, Any] = {"studies": pages[index]}
        if index + 1 < len(pages):
            body["nextPageToken"] = f"t{index + 1}"
        if index == 0 and request.url.params.get("countTotal") == "true" and count is not None:
            body["totalCount"] = len(studies) + count
        return httpx.Response(200, json=body)

    return handler


def test_a_search_pages_to_the_end_and_returns_every_hit_as_a_summary(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = real_records()
    route = router.get("/studies").mock(
        side_effect=listing_server([summary_of(r) for r in records], per_page=4)
    )

    hits = make_client().search(
        {"query.intr": " selinexor OR KPT-330 ", "filter.overallStatus": "recruiting|Completed"}
    )

    assert hits == tuple(expected_summary(r) for r in records)
    assert route.call_count == 3
    first = dict(route.calls[0].request.url.params)
    assert first == {
        "query.intr": "selinexor OR KPT-330",
        "filter.overallStatus": "RECRUITING,COMPLETED",
        "fields": SUMMARY_FIELDS,
        "pageSize": "1000",
        "countTotal": "true",
        "format": "json",
    }
    for n, call in enumerate(route.calls[1:], start=1):
        params = dict(call.request.url.params)
        assert params.pop("pageToken") == f"t{n}"
        assert params == first


def test_a_summary_leaves_out_what_the_registry_leaves_out(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    bare = {"protocolSection": {"identificationModule": {"nctId": "nct05923112"}}}
    router.get("/studies").mock(side_effect=listing_server([bare], per_page=10))
    assert make_client().search({"query.term": "x"}) == (StudySummary("NCT05923112"),)


def test_a_short_search_is_an_error_not_a_result(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    records = real_records()
    router.get("/studies").mock(
        side_effect=listing_server(
            [summary_of(r) for r in records], per_page=4, drop=[nct_id(records[5])]
        )
    )

    with pytest.raises(ShortReadError) as caught:
        make_client().search({"query.cond": "asthma"})

    error = caught.value
    assert isinstance(error, TransientFetchError)
    assert (error.expected, error.received) == (11, 10)
    assert str(error) == (
        "clinicaltrials.gov sent 10 studies for a search but counted 11; "
        "the answer was not used: try again later"
    )
    assert error.detail == (
        f"GET {BASE}/studies with query.cond='asthma': "
        "totalCount 11, 10 distinct studies over 3 pages"
    )


def test_a_listing_of_empty_pages_with_new_tokens_ends(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    """A server that counts studies but sends empty pages, each with a token never seen before
    (so the repeated-token check never fires): the listing stops after three pages that bring
    nothing, as a short read, rather than asking up to 100,000 times under the sync's lock."""
    calls = []

    def endless(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        token = f"t{len(calls)}"
        return httpx.Response(200, json={"studies": [], "totalCount": 5, "nextPageToken": token})

    router.get("/studies").mock(side_effect=endless)
    with pytest.raises(ShortReadError, match="sent 0 studies"):
        make_client().updated_since(date(2026, 11, 1))
    assert len(calls) == 3


def test_a_study_sent_twice_is_counted_once(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    studies = [summary_of(r) for r in real_records()]
    router.get("/studies").mock(side_effect=listing_server(studies, per_page=4, repeat_first=True))
    client = make_client()
    assert len(client.search({"query.term": "x"})) == 11

    # The repeat hides a missing study: 11 arrivals, 10 distinct, 11 counted.
    router.get("/studies").mock(
        side_effect=listing_server(
            studies, per_page=4, repeat_first=True, drop=[nct_id(studies[7])]
        )
    )
    with pytest.raises(ShortReadError, match="sent 10 studies"):
        client.search({"query.term": "x"})


def test_a_search_without_a_count_cannot_be_checked(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    studies = [summary_of(r) for r in real_records()]
    route = router.get("/studies").mock(side_effect=listing_server(studies, per_page=4, count=None))
    with pytest.raises(ShortReadError, match="gave no count") as caught:
        make_client().search({"query.term": "x"})
    assert (caught.value.expected, caught.value.received) == (None, 4)
    assert route.call_count == 1  # no point paging on


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"query.recrs": "x", "query.term": "y"}, "unknown search parameter"),
        ({"filter.ids": "NCT02300909"}, "unknown search parameter"),
        ({"query.term": "  "}, "must be a non-empty string"),
        ({"filter.overallStatus": "RECRUITING"}, "at least one query"),
        ({}, "at least one query"),
        ({"query.term": "x", "filter.overallStatus": "RECRUITING,OPEN"}, "'OPEN'"),
    ],
)
def test_search_parameters_are_checked_before_any_request(
    router: respx.MockRouter,
    make_client: Callable[..., CtGovClient],
    params: dict[str, str],
    problem: str,
) -> None:
    route = router.get("/studies").mock(return_value=page([]))
    with pytest.raises(ValueError, match=problem):
        make_client().search(params)
    assert route.call_count == 0


def test_updated_since_lists_ids_and_aliases_of_studies_updated_from_that_day(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    studies: list[Record] = [
        {"protocolSection": {"identificationModule": {"nctId": f"NCT1000000{i}"}}} for i in range(5)
    ]
    studies[2]["protocolSection"]["identificationModule"]["nctIdAliases"] = ["NCT02380456", 7]
    route = router.get("/studies").mock(side_effect=listing_server(studies, per_page=2))

    ids = make_client().updated_since(date(2026, 11, 2))

    assert ids == {*(f"NCT1000000{i}" for i in range(5)), "NCT02380456"}
    assert route.call_count == 3
    assert dict(route.calls[0].request.url.params) == {
        "filter.advanced": "AREA[LastUpdatePostDate]RANGE[2026-11-02,MAX]",
        "fields": UPDATED_FIELDS,
        "pageSize": "1000",
        "countTotal": "true",
        "format": "json",
    }


def test_a_short_update_listing_is_an_error(
    router: respx.MockRouter, make_client: Callable[..., CtGovClient]
) -> None:
    studies = [{"protocolSection": {"identificationModule": {"nctId": "NCT10000001"}}}]
    router.get("/studies").mock(side_effect=listing_server(studies, per_page=2, count=1))
    with pytest.raises(ShortReadError, match="for an update listing but counted 2"):
        make_client().updated_since(date(2026, 11, 2))


@pytest.mark.parametrize("day", [datetime(2026, 11, 2, tzinfo=UTC), "2026-11-02"])
def test_updated_since_takes_a_date(make_client: Callable[..., CtGovClient], day: Any) -> None:
    with pytest.raises(TypeError, match=r"datetime\.date"):
        make_client().updated_since(day)


def test_a_server_that_accepts_and_never_answers_is_reported_within_the_silence_budget() -> None:
    """Five silent tries of ``timeout_s`` each took minutes to a message; no retry starts now
    that could end past ``silence_budget_s``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)  # the kernel accepts; nobody ever reads or answers
    port = server.getsockname()[1]
    client = CtGovClient(
        base_url=f"http://127.0.0.1:{port}/api/v2",
        timeout_s=0.4,
        min_interval_s=0,
        max_attempts=5,
        backoff_initial_s=0.01,
        backoff_max_s=0.01,
        silence_budget_s=1.0,
    )
    try:
        with pytest.raises((TransientFetchError, ApiUnavailableError)) as caught:
            client.version()
        assert client.requests_made == 2  # 0.4 s, then 0.8 s: a third could end at 1.2 s
        assert "did not answer" in str(caught.value)
    finally:
        client.close()
        server.close()

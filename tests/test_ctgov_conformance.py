"""The CT.gov stand-ins held to the API's own spec (tests/data/ctgov/openapi.json: the official
openapi.yaml v2.0.5, as JSON): their parameters, patterns, defaults and response shapes.

Both front ends of :mod:`tests.fakes.ctgov_behaviour` are checked: the tests' FakeCtGov and the
benchmark's stand-in (its own process)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.fakes import ctgov_behaviour as rules
from tests.fakes.ctgov_server import FakeCtGov, load_records

REPO = Path(__file__).resolve().parents[1]
SPEC: dict[str, Any] = json.loads((REPO / "tests/data/ctgov/openapi.json").read_text("utf-8"))
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]


def spec_params(path: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in SPEC["paths"][path]["get"].get("parameters", [])}


def test_the_parameters_are_the_spec_s() -> None:
    assert set(spec_params("/studies")) == rules.STUDIES_PARAMS
    assert set(spec_params("/studies/{nctId}")) - {"nctId"} == rules.STUDY_PARAMS
    assert spec_params("/version") == {}


def test_page_size_default_and_cap_are_the_spec_s() -> None:
    page_size = spec_params("/studies")["pageSize"]
    assert page_size["schema"]["default"] == rules.DEFAULT_PAGE_SIZE
    assert f"{rules.MAX_PAGE_SIZE:,}" in page_size["description"]


@pytest.mark.parametrize(
    "raw",
    [
        "NCT02300909",
        "nct02300909",
        "NCT123",
        "NCT00000000",
        "NCT0",
        "NCT１２３４５６７８",  # full-width digits
        "NCT٠٢٣٠٠٩٠٩",  # Arabic-Indic digits
        "NCT123456789",
        " NCT02300909",
        "NCT02300909,",
    ],
)
def test_the_id_pattern_is_the_spec_s_with_ascii_digits(raw: str) -> None:
    patterns = {
        spec_params("/studies")["filter.ids"]["schema"]["items"]["pattern"],
        spec_params("/studies")["postFilter.ids"]["schema"]["items"]["pattern"],
        spec_params("/studies/{nctId}")["nctId"]["schema"]["pattern"],
    }
    assert len(patterns) == 1
    # The server is a JVM service: its \d is ASCII only, unlike Python's.
    spec = re.compile(patterns.pop(), re.ASCII)
    assert bool(spec.search(raw)) == bool(rules.NCT_ID_PATTERN.fullmatch(raw))


def test_the_status_enum_is_the_spec_s() -> None:
    assert set(SCHEMAS["Status"]["enum"]) == rules.STATUSES


# -- response shapes, from both front ends --------------------------------------------------------


def _paged_schema() -> dict[str, Any]:
    # PagedStudies as the spec has it, each study checked apart (records carry keys the spec
    # does not list deep inside; their top level is checked against Study's properties).
    schema = dict(SCHEMAS["PagedStudies"])
    schema["properties"] = {
        **schema["properties"],
        "studies": {"type": "array", "items": {"type": "object"}},
    }
    return schema


def _check_page(body: dict[str, Any]) -> None:
    jsonschema.validate(body, _paged_schema())
    for study in body["studies"]:
        assert set(study) <= set(SCHEMAS["Study"]["properties"])


def _bench_standin() -> Any:
    path = REPO / "benchmarks" / "standin.py"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_standin", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


@pytest.fixture(params=["tests", "benchmarks"], scope="module")
def front_end(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    """(base_url, ids it serves) of each stand-in."""
    if request.param == "tests":
        records = load_records()
        with FakeCtGov(records) as fake:
            yield (
                fake.base_url,
                [r["protocolSection"]["identificationModule"]["nctId"] for r in records],
            )
    else:
        with _bench_standin().StandIn(watched=12, extra=3) as standin:
            yield standin.base_url, [f"NCT9{i:07d}" for i in range(12)]


def test_version_answers_in_the_spec_s_shape(front_end: tuple[str, list[str]]) -> None:
    base_url, _ = front_end
    answer = httpx.get(f"{base_url}/version")
    assert answer.status_code == 200
    jsonschema.validate(answer.json(), SCHEMAS["Version"])
    refused = httpx.get(f"{base_url}/version", params={"x": "1"})
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/plain")


def test_version_may_come_without_a_data_timestamp() -> None:
    with FakeCtGov(load_records()[:1]) as fake:
        fake.omit_data_timestamp()
        body = httpx.get(f"{fake.base_url}/version").json()
    assert body == {"apiVersion": "2.0.5"}
    jsonschema.validate(body, SCHEMAS["Version"])  # spec: only apiVersion is required


def test_pages_answer_in_the_spec_s_shape(front_end: tuple[str, list[str]]) -> None:
    base_url, ids = front_end
    with httpx.Client(base_url=base_url) as http:
        params = {"filter.ids": ",".join(ids[:5]), "pageSize": "2", "countTotal": "true"}
        first = http.get("/studies", params=params).json()
        _check_page(first)
        assert first["totalCount"] == 5 and len(first["studies"]) == 2
        seen = len(first["studies"])
        token = first.get("nextPageToken")
        pages = 1
        while token:
            page = http.get("/studies", params={**params, "pageToken": token}).json()
            _check_page(page)
            assert "totalCount" not in page  # spec: "ignored for the subsequent pages"
            seen += len(page["studies"])
            token = page.get("nextPageToken")
            pages += 1
        assert seen == 5
        assert pages == 3  # 2 + 2 + 1: the last page is not full, so it has no token

        # A full last page carries a token all the same (observed); its page is empty.
        exact = {"filter.ids": ",".join(ids[:4]), "pageSize": "2"}
        second = http.get("/studies", params={**exact, "pageToken": "x"})
        assert second.status_code == 400
        first = http.get("/studies", params=exact).json()
        second_page = http.get(
            "/studies", params={**exact, "pageToken": first["nextPageToken"]}
        ).json()
        assert len(second_page["studies"]) == 2 and "nextPageToken" in second_page
        last = http.get(
            "/studies", params={**exact, "pageToken": second_page["nextPageToken"]}
        ).json()
        _check_page(last)
        assert last == {"studies": []}


def test_refusals_are_text_plain_400s(front_end: tuple[str, list[str]]) -> None:
    base_url, ids = front_end
    with httpx.Client(base_url=base_url) as http:
        for params in (
            {"filter.ids": f"{ids[0]},NCT00000000"},
            {"filter.ids": f"{ids[0]},NCT０２３００９０９"},
            {"query.recrs": "x"},
            {"query.term": "selinexor [KPT-330]"},
            {"pageSize": "-1"},
        ):
            answer = http.get("/studies", params=params)
            assert answer.status_code == 400, params
            assert answer.headers["content-type"].startswith("text/plain")
        assert "is unknown parameter" in http.get("/studies", params={"query.recrs": "x"}).text


def test_a_request_head_over_8_kb_is_refused(front_end: tuple[str, list[str]]) -> None:
    base_url, ids = front_end
    many = ",".join(f"NCT{n:08d}" for n in range(1, 700))  # ~8.4 KB of ids
    with httpx.Client(base_url=base_url) as http:
        assert http.get("/studies", params={"filter.ids": many}).status_code in (414, 431)
        fits = ",".join(f"NCT{n:08d}" for n in range(1, 500))
        assert http.get("/studies", params={"filter.ids": fits}).status_code == 200
        big_header = {"X-Padding": "x" * 8200}
        refused = http.get("/studies", params={"filter.ids": ids[0]}, headers=big_header)
        assert refused.status_code == 431

"""Study records for tests, and the edits tests make to them (a plain module, like e2e.py)."""

from __future__ import annotations

import copy
from typing import Any

from sqlmodel import col, select

from tests.conftest import load_record, selinexor_records
from tests.fakes.source import FakeSource
from trialwatch.storage import ChangeEvent, Store


def status_module(record: dict[str, Any]) -> dict[str, Any]:
    return record["protocolSection"]["statusModule"]  # type: ignore[no-any-return]


def complete(record: dict[str, Any]) -> None:
    """The study completes (SEAL's change in the mission)."""
    status_module(record)["overallStatus"] = "COMPLETED"


def slip(record: dict[str, Any]) -> None:
    """Its primary completion slips to 2028-08-31 (estimated)."""
    status_module(record)["primaryCompletionDateStruct"] = {
        "date": "2028-08-31",
        "type": "ESTIMATED",
    }


def grow(record: dict[str, Any]) -> None:
    """Its enrollment becomes 80 (estimated)."""
    record["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 80, "type": "ESTIMATED"}


def distinct_records(n: int) -> list[dict[str, Any]]:
    """n distinct studies made from the real records (unique ids NCT09000000...)."""
    base = selinexor_records() + [load_record(f"{i}.json") for i in ("NCT01213277",)]
    out = []
    for i in range(n):
        record = copy.deepcopy(base[i % len(base)])
        record["protocolSection"]["identificationModule"]["nctId"] = f"NCT09{i:06d}"
        record["protocolSection"]["identificationModule"].pop("nctIdAliases", None)
        record["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {
            "date": "2026-11-02",
            "type": "ACTUAL",
        }
        out.append(record)
    return out


def edit_status(
    source: FakeSource, nct_id: str, status: str, day: str, *, posted: bool = True
) -> None:
    """The study takes ``status``; ``posted``: CT.gov moves its LastUpdatePostDate to ``day``
    (as it does for a sponsor's edit, most of the time)."""
    record = copy.deepcopy(source.records[nct_id])
    module = record["protocolSection"]["statusModule"]
    module["overallStatus"] = status
    if posted:
        module["lastUpdatePostDateStruct"] = {"date": day, "type": "ACTUAL"}
    source.put(record)


def change_events(store: Store) -> list[tuple[str, str, str | None, str | None]]:
    """Every recorded change event as (nct_id, field, old, new), sorted."""
    with store.session() as s:
        rows = s.exec(select(ChangeEvent).order_by(col(ChangeEvent.id)))
        return sorted((e.nct_id, e.field, e.old_json, e.new_json) for e in rows)

"""SEAL's earlier versions, as CT.gov's record history would serve them.

How they are made: each is a copy of the live record (``tests/data/selinexor/NCT02606461.json``,
a real record) with only the status module edited, so that the story between them is known
exactly and everything else is as real as the record:

- version 0, submitted 2017-11-10: NOT_YET_RECRUITING; start 2015-12-10 (estimated); primary
  completion 2019-12-31 (estimated); last update 2017-11-10 / posted 2017-11-14;
- version 1, 2018-03-05: RECRUITING, start actual; last update 2018-03-05 / 2018-03-07;
- version 2, 2020-02-10: still RECRUITING; primary completion slipped to 2020-06-22
  (estimated); last update 2020-02-10 / 2020-02-12;
- version 3, 2026-05-12: the live record itself, unedited (ACTIVE_NOT_RECRUITING, primary
  completion 2020-06-22 actual).

So the registry's last version is exactly what a first sync stores: where the two meet.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.conftest import load_record

SEAL = "NCT02606461"


def _edited(live: dict[str, Any], **status: Any) -> dict[str, Any]:
    record = copy.deepcopy(live)
    record["protocolSection"]["statusModule"].update(status)
    return record


def seal_versions() -> list[tuple[str, dict[str, Any]]]:
    """``(submitted day, record)`` for each of SEAL's versions, oldest first."""
    live = load_record(f"{SEAL}.json")
    v0 = _edited(
        live,
        overallStatus="NOT_YET_RECRUITING",
        startDateStruct={"date": "2015-12-10", "type": "ESTIMATED"},
        primaryCompletionDateStruct={"date": "2019-12-31", "type": "ESTIMATED"},
        lastUpdateSubmitDate="2017-11-10",
        lastUpdatePostDateStruct={"date": "2017-11-14", "type": "ACTUAL"},
    )
    v1 = _edited(
        v0,
        overallStatus="RECRUITING",
        startDateStruct={"date": "2015-12-10", "type": "ACTUAL"},
        lastUpdateSubmitDate="2018-03-05",
        lastUpdatePostDateStruct={"date": "2018-03-07", "type": "ACTUAL"},
    )
    v2 = _edited(
        v1,
        primaryCompletionDateStruct={"date": "2020-06-22", "type": "ESTIMATED"},
        lastUpdateSubmitDate="2020-02-10",
        lastUpdatePostDateStruct={"date": "2020-02-12", "type": "ACTUAL"},
    )
    for record in (v0, v1, v2):
        record.pop("resultsSection", None)
        record["hasResults"] = False
    return [("2017-11-10", v0), ("2018-03-05", v1), ("2020-02-10", v2), ("2026-05-12", live)]

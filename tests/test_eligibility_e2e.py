"""An eligibility amendment end to end, and the upgrade that starts tracking eligibility.

BOSTON (NCT03110562) gains an exclusion criterion and a maximum age of 75 years: the real
command reports both and the email, from a real SMTP server on loopback, names the criterion.
The release that starts tracking eligibility re-reads every stored record silently: nobody
hears about criteria that were always there, while an amendment published in the same refresh
is told.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests import storage_reads
from tests.conftest import FakeClock
from tests.fakes.ctgov_server import FakeCtGov
from tests.fakes.smtp_server import FakeSmtp
from tests.test_email_e2e import User, _parts
from tests.test_sync import IDS, _source, _sync, _to_clinician
from trialwatch.models import Snapshot
from trialwatch.normalize import NORMALIZER_VERSION, normalize
from trialwatch.storage import Store

BOSTON = "NCT03110562"
CRITERION = "Exclusion criteria: 1 added: “Prior XPO1 inhibitor”"
MAX_AGE = "Maximum age: (none) → 75 Years"


def amend(record: dict[str, Any]) -> None:
    """The protocol amendment: one more exclusion criterion, and an upper age limit."""
    eligibility = record["protocolSection"]["eligibilityModule"]
    eligibility["eligibilityCriteria"] += "\n* Prior XPO1 inhibitor"
    eligibility["maximumAge"] = "75 Years"


@pytest.mark.e2e
def test_an_eligibility_amendment_reaches_the_clinician_by_email(
    tmp_path: Path, api: FakeCtGov, smtp: FakeSmtp
) -> None:
    user = User(tmp_path, api, smtp.port)
    assert user.run("sync").code == 0
    assert smtp.messages == []

    api.update_study(BOSTON, amend)
    run = user.run("sync")

    assert run.code == 0
    assert "1 changed" in run.out or "in 1 trial" in run.out, run.out
    [received] = smtp.wait_for(1)
    message = received.message
    assert "BOSTON" in message["Subject"]
    assert "Exclusion criteria" in message["Subject"]
    for body in _parts(message).values():
        assert CRITERION in body
        assert MAX_AGE in body
    # Told once: the next sync finds nothing new.
    assert user.run("sync", "--force").code == 0
    assert len(smtp.messages) == 1


_V3 = (
    "allocation",
    "masking",
    "collaborators",
    "inclusion_criteria",
    "exclusion_criteria",
    "other_criteria",
    "sex",
    "minimum_age",
    "maximum_age",
    "healthy_volunteers",
)


def _as_version_2(record: Any) -> Snapshot:
    """What normalizer version 2 made of a record: none of the fields version 3 added."""
    snapshot = normalize(record)
    defaults = Snapshot(nct_id=snapshot.nct_id)
    return dataclasses.replace(snapshot, **{name: getattr(defaults, name) for name in _V3})


def _plain_as_version_2(record: Any) -> dict[str, Any]:
    """:func:`_as_version_2` in the plain form a sync prepares records in."""
    return _as_version_2(record).to_dict()


def test_upgrading_to_eligibility_tracking_tells_only_the_amendment(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trialwatch.decision as decision_module
    import trialwatch.prepare as prepare_module

    source = _source()
    # Records are read where they are prepared, and read again where a page is decided.
    with monkeypatch.context() as old_release:
        old_release.setattr(prepare_module, "normalized_dict", _plain_as_version_2)
        old_release.setattr(decision_module, "normalize", _as_version_2)
        old_release.setattr(decision_module, "NORMALIZER_VERSION", 2)
        _sync(store, source, clock, router=_to_clinician)
    assert all(t.normalizer_version == 2 for t in storage_reads.trials(store))
    amended = copy.deepcopy(source.records[IDS[0]])
    amended["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] += "\n* Pregnancy"
    source.put(amended)
    source.data_timestamp = "2026-11-21T09:00:06"

    result = _sync(store, source, clock, router=_to_clinician)

    assert result.rebaselined == len(IDS)
    assert [(u.nct_id, [c.summary for c in u.changes]) for u in result.updates] == [
        (IDS[0], ["Exclusion criteria: 1 added: “Pregnancy”"])
    ]
    [note] = store.notifications()
    assert len(note.change_ids) == 1
    assert {t.normalizer_version for t in storage_reads.trials(store)} == {NORMALIZER_VERSION}

"""One validator of NCT ids, the registry's own rule, at every door (settings, watch, import)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov, load_records
from trialwatch.config import WatchlistEntry
from trialwatch.ids import InvalidNctIdError, check_nct_id, match_trial_names, nct_id_problem


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("NCT02300909", "NCT02300909"),
        (" nct02300909 ", "NCT02300909"),
        ("NCT０２３００９０９", "NCT02300909"),  # full-width digits fold to ASCII
        ("ＮＣＴ０２３００９０９", "NCT02300909"),  # and full-width letters
    ],
)
def test_ids_fold_to_what_the_registry_writes(raw: str, folded: str) -> None:
    assert check_nct_id(raw) == folded


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("NCT00000000", "placeholder"),
        ("NCT٠٢٣٠٠٩٠٩", "another script (Arabic-Indic)"),
        ("NCT०२३००९०९", "another script (Devanagari)"),
        ("NCT1234567", "7 digits"),
        ("NCT123456789", "9 digits"),
        ("NCT123", "3 digits"),
        ("XYZ02300909", "expected NCT"),
    ],
)
def test_what_the_registry_refuses_is_refused_with_the_reason(raw: str, reason: str) -> None:
    problem = nct_id_problem(raw)
    assert problem is not None and reason in problem
    with pytest.raises(InvalidNctIdError, match=reason.split(" (")[0]):
        check_nct_id(raw)


def test_the_settings_use_the_same_validator() -> None:
    assert WatchlistEntry(nct_id="NCT０２３００９０９").nct_id == "NCT02300909"
    with pytest.raises(ValueError, match="placeholder"):
        WatchlistEntry(nct_id="NCT00000000")


@pytest.mark.e2e
def test_a_pasted_placeholder_is_skipped_and_every_other_trial_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "trialwatch.toml"
    config.write_text('[logging]\nformat = "json"\n', encoding="utf-8")
    pasted = tmp_path / "paper.txt"
    pasted.write_text(
        "Trials: NCT00000000, NCT09999991 and NCT０２３００９０９.\n", encoding="utf-8"
    )
    with FakeCtGov(load_records()) as api:
        env = user_env(api.base_url, tmp_path / "tw.db", TRIALWATCH_CONFIG=str(config))
        imported = trialwatch("watch", "import", str(pasted), env=env, cwd=tmp_path)
        assert imported.code == 0, imported.err
        assert "NCT00000000" in imported.err and "placeholder" in imported.err
        assert "2 added" in imported.out
        added = trialwatch("watch", "add", "NCT０２６０６４６１", env=env, cwd=tmp_path)
        assert added.code == 0 and "Watching NCT02606461." in added.out
        refused = trialwatch("watch", "add", "NCT00000000", env=env, cwd=tmp_path)
        assert refused.code == 2 and "placeholder" in refused.err
        synced = trialwatch("sync", env=env, cwd=tmp_path)
        assert synced.code == 0, synced.err
        sent = [r.params["filter.ids"] for r in api.requests if "filter.ids" in r.params]
    assert sent == ["NCT02300909,NCT02606461,NCT09999991"]  # one request, all checked
    assert "Traceback" not in imported.err + synced.err


_NAMES = [
    ("NCT03555422", "METSSAR: selinexor dosing schedules in sarcoma"),
    ("NCT02606461", "SEAL"),
    ("NCT03110562", "BOSTON"),
    ("NCT02606461", "SEAL"),  # the registry's acronym, beside the label
    ("NCT01607892", "Phase 2, advanced gynecologic malignancies"),
    ("NCT02025985", "Phase 2, recurrent gliomas"),
    ("NCT04000000", "SEALANT"),
    ("NCT05000000", None),
]


@pytest.mark.parametrize(
    ("key", "ids"),
    [
        ("METSSAR", ["NCT03555422"]),  # the text before the colon
        ("metssar", ["NCT03555422"]),  # any case
        ("  Metss ", ["NCT03555422"]),  # a unique prefix
        ("seal", ["NCT02606461"]),  # a whole name beats a prefix of another (SEALANT)
        ("sea", ["NCT02606461", "NCT04000000"]),  # an ambiguous prefix: both candidates
        ("phase 2,  recurrent", ["NCT02025985"]),  # runs of spaces are one
        ("phase 2", ["NCT01607892", "NCT02025985"]),
        ("selinexor", []),  # the middle of a name is not a prefix
        ("", []),
    ],
)
def test_a_trial_is_named_by_its_label_acronym_colon_head_or_a_unique_prefix(
    key: str, ids: list[str]
) -> None:
    assert match_trial_names(key, _NAMES) == ids

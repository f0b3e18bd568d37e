"""Every number a setting takes is bounded: 1e20 is refused where it was written (exit 2, the
variable or the file's line), never an OverflowError in the middle of a command."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path

import annotated_types
import pytest
from pydantic import BaseModel

from tests.e2e import SHIPPED_CONFIG, trialwatch, user_env
from trialwatch.config import Settings, load_settings
from trialwatch.exceptions import ConfigError


def _numeric_fields(
    model: type[BaseModel], path: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    for name, info in model.model_fields.items():
        kinds = typing.get_args(info.annotation) or (info.annotation,)
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                yield from _numeric_fields(kind, (*path, name))
        if path and any(k in (int, float) for k in kinds) and info.annotation is not bool:
            yield (*path, name)


SECTION_NUMBERS = sorted(_numeric_fields(Settings))
# Bounded by a validator of their own (0 to 64), held by the environment test below.
_OWN_VALIDATOR = {("sync", "workers")}


def test_there_are_numbers_to_check() -> None:
    assert ("outbox", "lease_s") in SECTION_NUMBERS
    assert len(SECTION_NUMBERS) >= 20


@pytest.mark.parametrize("field", SECTION_NUMBERS, ids=".".join)
def test_every_number_has_an_upper_bound(field: tuple[str, ...]) -> None:
    if field in _OWN_VALIDATOR:
        return
    section, name = field
    info = Settings.model_fields[section].annotation.model_fields[name]  # type: ignore[union-attr]
    bounds = [m for m in info.metadata if isinstance(m, annotated_types.Le | annotated_types.Lt)]
    assert bounds, f"{section}.{name} has no upper bound"


@pytest.mark.parametrize("field", SECTION_NUMBERS, ids=".".join)
def test_a_huge_value_from_the_environment_is_refused_naming_its_variable(
    field: tuple[str, ...],
) -> None:
    variable = "TRIALWATCH_" + "__".join(field).upper()
    with pytest.raises(ConfigError) as refused:
        load_settings(SHIPPED_CONFIG, env={variable: "1e20"})
    assert [p for p in refused.value.problems if variable in p], refused.value.problems


def test_a_huge_value_in_the_file_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "trialwatch.toml"
    path.write_text("[outbox]\nmax_attempts = 48\nlease_s = 1e20\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings(path, env={})
    [problem] = refused.value.problems
    assert problem.startswith(f"{path}, line 3, column 11: outbox.lease_s: ")
    assert "less than or equal to 86400" in problem


@pytest.mark.e2e
def test_notify_flush_with_a_huge_lease_exits_2_without_a_traceback(tmp_path: Path) -> None:
    env = user_env(
        "http://127.0.0.1:9", tmp_path / "trialwatch.db", TRIALWATCH_OUTBOX__LEASE_S="1e20"
    )
    run = trialwatch("notify", "flush", env=env, cwd=tmp_path)
    assert run.code == 2, run.err
    assert "Traceback" not in run.err
    assert "TRIALWATCH_OUTBOX__LEASE_S" in run.err
    assert not (tmp_path / "trialwatch.db").exists()  # refused before anything was opened

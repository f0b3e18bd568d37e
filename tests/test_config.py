"""Settings: where they come from, and every problem reported at once with its origin."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from tests.e2e import SHIPPED_CONFIG
from trialwatch.config import (
    MAX_QUERY_BYTES,
    ApiSettings,
    ConfigNotFoundError,
    OutboxSettings,
    QueryWatch,
    Settings,
    Subscription,
    SyncSettings,
    WatchlistEntry,
    load_settings,
    starter_config,
)
from trialwatch.exceptions import ConfigError
from trialwatch.models import Category, Severity

REVIEW_IDS = {
    "Table 1": ["NCT01607905", "NCT03110562", "NCT02025985", "NCT01607892", "NCT02606461"],
    "Table 2": [
        "NCT04811196",
        "NCT03193437",
        "NCT04138381",
        "NCT04595994",
        "NCT03042819",
        "NCT02323880",
        "NCT01986348",
        "NCT01896505",
    ],
}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trialwatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_watches_the_review_tables() -> None:
    settings = load_settings(SHIPPED_CONFIG, env={})
    by_table: dict[str, list[str]] = {}
    for entry in settings.watchlist:
        by_table.setdefault(entry.table or "", []).append(entry.nct_id)
        assert entry.label
    assert by_table == REVIEW_IDS
    labels = {e.nct_id: e.label for e in settings.watchlist}
    assert labels["NCT03110562"] == "BOSTON"
    assert labels["NCT02606461"] == "SEAL"
    assert settings.api.base_url == "https://clinicaltrials.gov/api/v2"
    assert settings.database.url == "sqlite:///data/trialwatch.db"
    assert settings.email.enabled is False


def test_the_starter_config_loads_and_watches_the_review(tmp_path: Path) -> None:
    path = _write(tmp_path, starter_config())
    settings = load_settings(path, env={})
    by_table: dict[str, list[str]] = {}
    for entry in settings.watchlist:
        by_table.setdefault(entry.table or "", []).append(entry.nct_id)
        assert entry.label
        assert "unverified" not in entry.label
    assert by_table == REVIEW_IDS
    (query,) = settings.queries
    assert query.ctgov_params() == {"query.intr": "selinexor OR KPT-330 OR XPOVIO"}
    assert query.track is False
    assert settings.email.enabled is False
    assert settings.database.url == "sqlite:///data/trialwatch.db"


def test_the_shipped_config_is_what_init_writes() -> None:
    # One text, so that the repository's config and a user's `trialwatch init` never tell two
    # stories (they once said batch_size 100 "at most 300" while the code said 500 and 650).
    assert SHIPPED_CONFIG.read_text(encoding="utf-8") == starter_config(), (
        "config/trialwatch.toml is not what `trialwatch init` writes: regenerate it with "
        "`rm config/trialwatch.toml && trialwatch init` (the text is src/trialwatch/starter.toml)"
    )


_COMMENTED = re.compile(r"# (\w+) = (.+?)(?: {2,}# (.*))?")


def _commented_settings(text: str) -> list[tuple[str, str, str, str]]:
    """(section, key, value, comment) of every commented-out ``key = value`` line that stands
    in a ``[section]`` table (not in a commented-out example of a list of tables)."""
    found = []
    section = None
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif re.match(r"# ?\[", line):
            section = None  # "# [[subscriptions]]": an example entry, not defaults
        elif section and (match := _COMMENTED.fullmatch(line)):
            key, value, comment = match.groups()
            found.append((section, key, value, comment or ""))
    return found


def test_every_default_the_starter_shows_is_the_model_s() -> None:
    text = starter_config()
    shown = _commented_settings(text)
    assert len(shown) > 40
    assert "{" not in text  # every default filled in
    for section, key, value, comment in shown:
        model = Settings.model_fields[section].default
        assert isinstance(model, BaseModel), section
        default = getattr(model, key)
        written = tomllib.loads(f"x = {value}")["x"]
        if default in (None, ()):
            continue  # no default: the line is an example ("username", "to", ...)
        parsed = type(model).model_validate({key: written})
        assert getattr(parsed, key) == default, f"[{section}] {key} = {value}"
        # A bound told in the comment is the model's too: "(at most 650)".
        for bound in re.findall(r"at most (\d+)", comment):
            [le] = [m.le for m in type(model).model_fields[key].metadata if hasattr(m, "le")]
            assert int(bound) == le, f"[{section}] {key}: {comment}"


def test_the_starter_s_defaults_follow_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # Filled in from the model, not written twice: another default shows at once.
    monkeypatch.setattr(Settings.model_fields["api"], "default", ApiSettings(batch_size=250))
    assert "# batch_size = 250 " in starter_config()


def test_the_starter_config_shows_every_setting_with_a_valid_example(tmp_path: Path) -> None:
    # Uncommenting every example line gives a file that loads and sets every setting: the starter
    # documents them all, and none of its examples is wrong.
    example = re.compile(r"^# ?(\[|[a-z_]+ = )")
    text = "\n".join(
        line[2:] if example.match(line) else line for line in starter_config().splitlines()
    )
    path = _write(tmp_path, text)
    # (enabled shows its default, false; the admin_email example needs email on.)
    load_settings(path, env={"TRIALWATCH_EMAIL__ENABLED": "true"})
    data = tomllib.loads(text)
    entries: dict[str, type[BaseModel]] = {
        "subscriptions": Subscription,
        "watchlist": WatchlistEntry,
        "queries": QueryWatch,
    }
    # Named in comments, never given as examples.
    secrets = {"password", "password_file", "token_file", "feed_token_file"}
    for section, field in Settings.model_fields.items():
        if section in entries:  # a list of tables: each key shown in at least one entry
            shown = set().union(*(entry.keys() for entry in data[section]))
            allowed = set(entries[section].model_fields)
        else:
            assert isinstance(field.default, BaseModel)
            shown = set(data[section])
            allowed = set(type(field.default).model_fields)
        assert allowed - secrets <= shown, section


def test_config_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = _write(tmp_path, '[api]\nbase_url = "https://explicit.example/api/v2"\n')
    other = tmp_path / "other.toml"
    other.write_text('[api]\nbase_url = "https://env.example/api/v2"\n')
    env = {"TRIALWATCH_CONFIG": str(other)}
    assert load_settings(explicit, env=env).api.base_url == "https://explicit.example/api/v2"
    assert load_settings(None, env=env).api.base_url == "https://env.example/api/v2"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    _write(tmp_path / "config", '[api]\nbase_url = "https://default.example/api/v2"\n')
    assert load_settings(None, env={}).api.base_url == "https://default.example/api/v2"


@pytest.mark.parametrize("how", ["--config", "$TRIALWATCH_CONFIG"])
def test_a_named_file_that_does_not_exist_is_an_error(tmp_path: Path, how: str) -> None:
    missing = tmp_path / "nope.toml"
    explicit, env = (
        (missing, {}) if how == "--config" else (None, {"TRIALWATCH_CONFIG": str(missing)})
    )
    with pytest.raises(ConfigNotFoundError) as info:
        load_settings(explicit, env=env)
    assert info.value.looked_at == (missing,)
    assert f"{missing} (from {how})" in str(info.value)


def test_no_config_file_anywhere_is_an_error_naming_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without one, `status` said "healthy" and `export` created ./data/trialwatch.db (issue 11).
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigNotFoundError) as info:
        load_settings(None, env={})
    message = str(info.value)
    assert str(tmp_path / "config" / "trialwatch.toml") in message
    assert "--config" in message
    assert "TRIALWATCH_CONFIG" in message
    assert "trialwatch init" in message
    assert isinstance(info.value, ConfigError)
    assert not (tmp_path / "data").exists()


def test_an_unreadable_config_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "[api]\n")
    real_read_bytes = Path.read_bytes

    def refuse(self: Path) -> bytes:
        # Tests run as root here, where chmod 000 does not stop a read.
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(
        ConfigError, match=f"{path}: cannot read the config file: permission denied"
    ):
        load_settings(path, env={})


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{tmp_path}: is a directory"):
        load_settings(tmp_path, env={})


def test_environment_overrides_every_section(tmp_path: Path) -> None:
    path = _write(tmp_path, '[email]\nsmtp_host = "file.example"\n')
    settings = load_settings(
        path,
        env={
            "TRIALWATCH_API__BASE_URL": "http://127.0.0.1:9/api/v2",
            "TRIALWATCH_DATABASE__URL": "postgresql+psycopg://u@h/db",
            "TRIALWATCH_EMAIL__SMTP_HOST": "env.example",
            "TRIALWATCH_EMAIL__SMTP_PORT": "2525",
            "TRIALWATCH_EMAIL__ENABLED": "true",
            "TRIALWATCH_EMAIL__TO": '["a@example.org", "b@example.org"]',
            "TRIALWATCH_EMAIL__MIN_SEVERITY": "critical",
            "TRIALWATCH_SCHEDULE__INTERVAL_SECONDS": "2",
            "TRIALWATCH_CONFIG_UNRELATED": "ignored: no section separator",
        },
    )
    assert settings.api.base_url == "http://127.0.0.1:9/api/v2"
    assert settings.database.url == "postgresql+psycopg://u@h/db"
    assert settings.email.smtp_host == "env.example"
    assert settings.email.smtp_port == 2525
    assert settings.email.enabled is True
    assert settings.email.to == ("a@example.org", "b@example.org")
    assert settings.email.min_severity is Severity.CRITICAL
    assert settings.schedule.interval_seconds == 2


def test_all_problems_at_once_with_their_origin(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[database]
url = "mysql://x"

[[watchlist]]
nct_id = "NCT1234567"
label = "too short"

[[watchlist]]
nct_id = "NCT02606461"
label = "SEAL"

[[watchlist]]
nct_id = "NCT02606461"
label = "SEAL twice"

[[subscriptions]]
to = ["not-an-address"]
mode = "hourly"
""",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={"TRIALWATCH_API__TIMEOUT_S": "-1", "TRIALWATCH_BOGUS__X": "1"})
    problems = info.value.problems
    text = "\n".join(problems)
    assert len(problems) == 7, text
    assert (
        f"{path}, line 6, column 10: watchlist[1].nct_id (label 'too short'): "
        "'NCT1234567' is not an NCT number" in text
    )
    assert f"{path}, line 14, column 10: watchlist[3].nct_id: NCT02606461 is listed twice" in text
    assert "mysql://x" in text
    assert "not-an-address" in text
    assert "hourly" in text
    assert "environment variable TRIALWATCH_API__TIMEOUT_S: api.timeout_s" in text
    assert "environment variable TRIALWATCH_BOGUS__X: unknown section [bogus]" in text


def test_a_value_error_names_the_line_and_column_of_the_value(tmp_path: Path) -> None:
    lines = [
        "[api]",
        "timeout_s = -1   # [not a table",
        '  base_ulr = "https://x.example"',
        "",
        "[email]",
        "to = [",
        '  "a@example.org",  # a comment with [ and "',
        '  "not-an-address",',
        "]",
        "smtp_host = '''",
        'min_severity = "not a key: inside a string"',
        "'''",
        '"min_severity" = "huge"',
        "",
        "[[watchlist]]",
        'nct_id = "NCT02606461"',
        "",
        "[[watchlist]]",
        'nct_id = "NCT01607905"',
        'reference = """',
        r'label = "not a key either" \"""',
        '"""',
        'label = ""',
    ]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert sorted(info.value.problems) == sorted(
        [
            f"{path}, line 2, column 13: api.timeout_s: Input should be greater than 0 (got -1)",
            f"{path}, line 3, column 3: api.base_ulr: unknown setting; allowed: base_url, "
            "timeout_s, min_interval_s, max_attempts, backoff_initial_s, backoff_max_s, "
            "max_retry_after_s, batch_size, throttle_budget_s, user_agent, history_url "
            "(did you mean base_url?)",
            f"{path}, line 6, column 6: email.to[2]: 'not-an-address' is not an email address",
            f"{path}, line 13, column 18: email.min_severity: unknown severity 'huge' "
            "(choose from admin, minor, major, critical)",
            f"{path}, line 23, column 9: watchlist[2].label (NCT01607905): String should have "
            "at least 1 character (got '')",
        ]
    )


def test_a_list_from_the_environment_is_blamed_on_it_not_on_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[email]\nto = ["a@example.org", "b@example.org", "c@example.org"]\n')
    env = {"TRIALWATCH_EMAIL__TO": '["x@example.org", "y@example.org", "bad"]'}
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env)
    assert info.value.problems == (
        "environment variable TRIALWATCH_EMAIL__TO: email.to[3]: 'bad' is not an email address",
    )


def test_a_conflict_set_by_the_environment_is_blamed_on_its_variables(tmp_path: Path) -> None:
    # The file has an [email] section, but it set neither of the two conflicting values.
    path = _write(tmp_path, '[email]\nsmtp_host = "smtp.example.org"\n')
    env = {"TRIALWATCH_HEALTH__ADMIN_EMAIL": "admin@example.org"}
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env)
    assert info.value.problems == (
        "environment variable TRIALWATCH_HEALTH__ADMIN_EMAIL: health.admin_email is set but "
        "[email] enabled is false: alerts could not be sent",
    )


def test_a_conflict_across_file_and_environment_names_both(tmp_path: Path) -> None:
    path = _write(tmp_path, "[email]\nenabled = false\n\n[health]\nmax_consecutive_failures = 2\n")
    env = {"TRIALWATCH_HEALTH__ADMIN_EMAIL": "admin@example.org"}
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env)
    assert info.value.problems[0].startswith(
        f"{path}, line 2, column 11 and environment variable TRIALWATCH_HEALTH__ADMIN_EMAIL: "
    )


def test_a_label_is_optional(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[watchlist]]\nnct_id = "NCT02606461"\n')
    (entry,) = load_settings(path, env={}).watchlist
    assert entry.nct_id == "NCT02606461"
    assert entry.label is None


def test_new_settings_defaults(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, ""), env={})
    assert settings.database.auto_upgrade is False
    assert settings.sync.incremental_above == 5000
    assert settings.sync.full_sweep_cron == "0 6 * * 6"
    assert settings.sync.progress == "auto"
    assert settings.outbox.flood_max_trials == 50
    assert settings.outbox.flood_max_fraction == 0.2
    assert settings.api.batch_size == 500


def test_new_settings_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[database]\nauto_upgrade = true\n[sync]\nprogress = "never"\n'
        "[outbox]\nflood_max_trials = 0\n",
    )
    settings = load_settings(
        path,
        env={
            "TRIALWATCH_SYNC__INCREMENTAL_ABOVE": "0",
            "TRIALWATCH_SYNC__FULL_SWEEP_CRON": "30 2 * * 0",
            "TRIALWATCH_OUTBOX__FLOOD_MAX_FRACTION": "0.5",
            "TRIALWATCH_API__BATCH_SIZE": "650",
        },
    )
    assert settings.database.auto_upgrade is True
    assert settings.sync.progress == "never"
    assert settings.sync.incremental_above == 0
    assert settings.sync.full_sweep_cron == "30 2 * * 0"
    assert settings.outbox.flood_max_trials == 0
    assert settings.outbox.flood_max_fraction == 0.5
    assert settings.api.batch_size == 650


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TRIALWATCH_DATABASE__AUTO_UPGRADE", "perhaps", "database.auto_upgrade"),
        ("TRIALWATCH_SYNC__INCREMENTAL_ABOVE", "-1", "sync.incremental_above"),
        ("TRIALWATCH_SYNC__FULL_SWEEP_CRON", "every saturday", "not a 5-field cron expression"),
        ("TRIALWATCH_SYNC__FULL_SWEEP_CRON", "0 6 * * 9", "sync.full_sweep_cron"),
        # The 30th of February: the daemon would run once at its start, then never again.
        ("TRIALWATCH_SCHEDULE__CRON", "0 9 30 2 *", "never fires: no such day in any year"),
        # In memory: nothing kept between commands, every sync a silent first baseline.
        ("TRIALWATCH_DATABASE__URL", "sqlite://", "a database in memory"),
        ("TRIALWATCH_DATABASE__URL", "sqlite:///:memory:", "a database in memory"),
        ("TRIALWATCH_DATABASE__URL", "sqlite:///file::memory:?uri=true", "a database in memory"),
        ("TRIALWATCH_DATABASE__URL", "sqlite:///file:tw?mode=memory&uri=true", "in memory"),
        ("TRIALWATCH_SYNC__FULL_SWEEP_CRON", "0 6 31 4 *", "never fires"),
        ("TRIALWATCH_SYNC__PROGRESS", "sometimes", "sync.progress"),
        ("TRIALWATCH_OUTBOX__FLOOD_MAX_TRIALS", "-1", "outbox.flood_max_trials"),
        ("TRIALWATCH_OUTBOX__FLOOD_MAX_FRACTION", "1.5", "outbox.flood_max_fraction"),
        ("TRIALWATCH_API__BATCH_SIZE", "651", "api.batch_size"),
    ],
)
def test_new_settings_are_validated(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=f"environment variable {variable}: .*{message}"):
        load_settings(_write(tmp_path, ""), env={variable: value})


def test_incremental_mode_and_flood_thresholds() -> None:
    from trialwatch.sync import FloodRule

    sync = SyncSettings()
    assert not sync.incremental(5000)
    assert sync.incremental(5001)
    assert not SyncSettings(incremental_above=0).incremental(10**6)

    outbox = OutboxSettings()
    rule = FloodRule(outbox.flood_max_trials, outbox.flood_max_fraction)
    assert not rule.floods(50, 100_000)
    assert rule.floods(51, 100_000)  # more than 50 trials
    assert rule.floods(21, 100)  # more than 20 % of the watch set
    assert not rule.floods(20, 100)
    assert not rule.floods(0, 0)
    assert not rule.floods(3, 13)  # three of the review's 13 on one day: three reports
    no_count = FloodRule(max_trials=0, max_fraction=0.2)
    assert not no_count.floods(5000, 100_000)
    assert no_count.floods(20_001, 100_000)
    assert not FloodRule(max_trials=0, max_fraction=0).floods(10**6, 10**6)


def test_queries(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[[queries]]
name = "selinexor"
intervention = "selinexor OR KPT-330 OR XPOVIO"
condition = "sarcoma"
status = ["Recruiting", "active, not recruiting", "NOT_YET_RECRUITING", "Unknown status",
          "recruiting"]

[[queries]]
name = "karyopharm"
term = "XPO1"
sponsor = "Karyopharm Therapeutics Inc"
status = "Completed"
track = true
""",
    )
    selinexor, karyopharm = load_settings(path, env={}).queries
    assert selinexor.name == "selinexor"
    assert selinexor.track is False
    assert selinexor.status == (
        "RECRUITING",
        "ACTIVE_NOT_RECRUITING",
        "NOT_YET_RECRUITING",
        "UNKNOWN",
    )
    assert selinexor.ctgov_params() == {
        "query.intr": "selinexor OR KPT-330 OR XPOVIO",
        "query.cond": "sarcoma",
        "filter.overallStatus": "RECRUITING,ACTIVE_NOT_RECRUITING,NOT_YET_RECRUITING,UNKNOWN",
    }
    assert karyopharm.track is True
    assert karyopharm.ctgov_params() == {
        "query.term": "XPO1",
        "query.spons": "Karyopharm Therapeutics Inc",
        "filter.overallStatus": "COMPLETED",
    }


def test_bad_queries_are_refused_at_load_each_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
[[queries]]
name = "selinexor"
intr = "selinexor"

[[queries]]
name = "Selinexor"
intervention = "selinexor"
status = ["Recruting"]

[[queries]]
status = ["Completed"]
""",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.problems == (
        f"{path}, line 3, column 1: queries[1].intr (name 'selinexor'): unknown setting; "
        "allowed: name, term, intervention, condition, sponsor, status, track "
        "(did you mean intervention?)",
        f"{path}, line 8, column 10: queries[2].status[1] (name 'Selinexor'): 'Recruting' is "
        "not a ClinicalTrials.gov overall status; use one of ACTIVE_NOT_RECRUITING, "
        "COMPLETED, ENROLLING_BY_INVITATION, NOT_YET_RECRUITING, RECRUITING, SUSPENDED, "
        "TERMINATED, WITHDRAWN, AVAILABLE, NO_LONGER_AVAILABLE, TEMPORARILY_NOT_AVAILABLE, "
        "APPROVED_FOR_MARKETING, WITHHELD, UNKNOWN (or as the site writes them, e.g. "
        "'Active, not recruiting')",
        f"{path}, line 10, column 1: queries[3].name: Field required",
        f"{path}, line 6, column 8: queries[2].name: 'Selinexor' is used twice (also queries[1])",
    )


def test_a_query_must_search_for_something(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[queries]]\nname = "everything"\nstatus = "recruiting"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.problems == (
        f"{path}, line 1, column 1: queries[1]: a query needs at least one of term, "
        "intervention, condition or sponsor",
    )


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "[api]\nbase_ulr = 'https://x.example'\n")
    with pytest.raises(ConfigError, match=r"api\.base_ulr: unknown setting"):
        load_settings(path, env={})


def test_password_never_in_the_file_and_never_shown(tmp_path: Path) -> None:
    path = _write(tmp_path, '[email]\nusername = "bob"\npassword = "hunter2"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "TRIALWATCH_EMAIL__PASSWORD" in str(info.value)
    assert "hunter2" not in str(info.value)

    ok = _write(tmp_path, '[email]\nusername = "bob"\n')
    settings = load_settings(ok, env={"TRIALWATCH_EMAIL__PASSWORD": "hunter2"})
    assert settings.email.resolved_password() == "hunter2"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


PLAINTEXT = {
    "TRIALWATCH_EMAIL__SECURITY": "none",
    "TRIALWATCH_EMAIL__SMTP_HOST": "smtp.example.org",
    "TRIALWATCH_EMAIL__USERNAME": "bob",
    "TRIALWATCH_EMAIL__PASSWORD": "hunter2",
}


def test_a_cleartext_password_is_refused_and_blamed_on_its_variables(tmp_path: Path) -> None:
    # Issue 11 item 7: `security = "none"` sent the password in clear text to any host. The
    # file mentions [email] but sets none of it: the variables that did take the blame.
    path = _write(tmp_path, "[email]\nenabled = true\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=PLAINTEXT)
    (problem,) = info.value.problems
    assert problem.startswith(
        "environment variables TRIALWATCH_EMAIL__PASSWORD, TRIALWATCH_EMAIL__SECURITY, "
        "TRIALWATCH_EMAIL__SMTP_HOST and TRIALWATCH_EMAIL__USERNAME: email: "
        'security = "none" would send the SMTP password in clear text to smtp.example.org'
    )
    assert "allow_plaintext_auth = true" in problem
    assert "hunter2" not in problem


def test_a_cleartext_password_from_the_file_names_its_lines(tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret\n")
    lines = [
        "[email]",
        'smtp_host = "mail.example.org"',
        *([""] * 6),  # so that line numbers past 9 are sorted as numbers
        'security = "none"',
        'username = "bob"',
        f'password_file = "{secret}"',
    ]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.problems[0].startswith(f"{path}, lines 2, 9, 10 and 11: email: security")


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST.", "127.0.0.1", "127.3.2.1", "::1", "[::1]"]
)
def test_a_cleartext_password_to_this_machine_is_allowed(tmp_path: Path, host: str) -> None:
    path = _write(tmp_path, f'[email]\nsmtp_host = "{host}"\n')
    env = {k: v for k, v in PLAINTEXT.items() if k != "TRIALWATCH_EMAIL__SMTP_HOST"}
    assert load_settings(path, env=env).email.smtp_host == host


def test_a_cleartext_password_is_allowed_when_the_user_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path, "[email]\nallow_plaintext_auth = true\n")
    settings = load_settings(path, env=PLAINTEXT)
    assert settings.email.allow_plaintext_auth is True
    # and without a password nothing secret is sent: no need to say so
    no_password = {k: v for k, v in PLAINTEXT.items() if k != "TRIALWATCH_EMAIL__PASSWORD"}
    assert load_settings(_write(tmp_path, "[email]\n"), env=no_password).email.username == "bob"


def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret\n")
    path = _write(tmp_path, f'[email]\npassword_file = "{secret}"\n')
    settings = load_settings(path, env={})
    assert settings.email.resolved_password() == "s3cret"
    secret.unlink()  # gone since the settings loaded: a config problem, said as one
    with pytest.raises(ConfigError, match="cannot read \\[email\\] password_file"):
        settings.email.resolved_password()


def test_subscriptions(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[[subscriptions]]
name = "myeloma"
to = "analyst@example.org"
trials = ["BOSTON"]
min_severity = "minor"
categories = ["status", "results"]
mode = "weekly"

[[subscriptions]]
webhook_url = "https://hooks.example/services/T000/B000/XXXX"
""",
    )
    subs = load_settings(path, env={}).subscriptions
    assert subs[0].to == ("analyst@example.org",)
    assert subs[0].categories == (Category.STATUS, Category.RESULTS)
    assert subs[0].min_severity is Severity.MINOR
    assert subs[0].mode == "weekly"
    assert "XXXX" not in repr(subs[1])


def test_bad_toml_is_one_clear_problem(tmp_path: Path) -> None:
    path = _write(tmp_path, "[api]\ntimeout_s = 1\n[logging\nlevel = 'info'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.problems == (
        f"{path}, line 3, column 9: not valid TOML: Expected ']' at the end of a table declaration",
    )


def test_a_file_that_is_not_utf8_says_where_the_bad_byte_is(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[api]\nbase_url = 'https://caf\xc3\xa9.example/\xe9'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    # Line and column (in characters: the earlier "é" is one), not a byte offset.
    assert info.value.problems == (
        f"{path}, line 2, column 34: not UTF-8 text (byte 0xe9); save the file as UTF-8",
    )


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "notepad.toml"
    path.write_bytes(b"\xef\xbb\xbf[api]\ntimeout_s = 7\n")
    assert load_settings(path, env={}).api.timeout_s == 7


def test_empty_variables_count_as_unset() -> None:
    settings = load_settings(env={"TRIALWATCH_EMAIL__PASSWORD": "", "TRIALWATCH_EMAIL__TO": ""})
    assert settings.email.password is None
    assert settings.email.to == ()


def test_a_bad_webhook_url_is_reported_without_echoing_it(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[subscriptions]]\nwebhook_url = "hooks.example/services/T0/B0/SECRETTOKEN"\n',
    )
    with pytest.raises(ConfigError, match="webhook URLs are secrets") as info:
        load_settings(path, env={})
    assert "SECRETTOKEN" not in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TRIALWATCH_API__BASE_URL", "https://clinicaltrials.gov:abc/api/v2", "invalid port"),
        # trialwatch appends its paths and queries: after a query or a fragment they would be
        # swallowed (a request to /api/v2/x#fragstudies?... is a request to /api/v2/x).
        ("TRIALWATCH_API__BASE_URL", "https://clinicaltrials.gov/api/v2#", "query or a fragment"),
        ("TRIALWATCH_API__BASE_URL", "https://mirror.example/api/v2?key=1", "query or a fragm"),
        ("TRIALWATCH_API__HISTORY_URL", "https://clinicaltrials.gov/api/int?x", "query or a"),
        ("TRIALWATCH_EMAIL__SENDER", "trialwatch@bad_domain.org", "not an email address"),
        ("TRIALWATCH_EMAIL__PASSWORD_FILE", "/nonexistent/password", "cannot read"),
        ("TRIALWATCH_HEALTH__ADMIN_EMAIL", "admin@example.org", "enabled is false"),
    ],
)
def test_settings_that_would_only_fail_later_fail_at_load(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env={variable: value})


def test_a_folder_named_like_a_memory_option_is_still_a_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/mode=memory/trialwatch.db"
    assert load_settings(_write(tmp_path, ""), env={"TRIALWATCH_DATABASE__URL": url})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[sync]\nbatch_size = 1" + "0" * 5000 + "\n", "more digits than can be read"),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nest too deep"),
    ],
)
def test_a_toml_file_python_cannot_read_is_a_config_error(
    tmp_path: Path, content: str, message: str
) -> None:
    """tomllib raises more than TOMLDecodeError: int() refuses a number over 4,300 digits
    (ValueError), and deep nesting exhausts the stack (RecursionError). Both were tracebacks."""
    path = _write(tmp_path, content)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, env={})


@pytest.mark.parametrize("kind", ["binary", "directory"])
def test_a_password_file_that_is_not_text_fails_at_load(tmp_path: Path, kind: str) -> None:
    """A binary file or a directory passed the readability check, then failed at delivery
    (a traceback in notify test, a dead letter after the sync had committed)."""
    target = tmp_path / "secret"
    if kind == "binary":
        target.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe")
    else:
        target.mkdir()
    with pytest.raises(ConfigError, match="not UTF-8 text" if kind == "binary" else "not a file"):
        load_settings(env={"TRIALWATCH_EMAIL__PASSWORD_FILE": str(target)})


@pytest.mark.parametrize(
    ("value", "expected"), [("auto", "auto"), ("AUTO", "auto"), ("0", 0), ("3", 3), ("64", 64)]
)
def test_sync_workers_are_auto_or_a_count(tmp_path: Path, value: str, expected: object) -> None:
    path = _write(tmp_path, "# defaults\n")
    settings = load_settings(path, env={"TRIALWATCH_SYNC__WORKERS": value})
    assert settings.sync.workers == expected


@pytest.mark.parametrize("value", ["many", "-1", "65", "1.5", ""])
def test_a_bad_sync_workers_value_is_one_plain_problem(tmp_path: Path, value: str) -> None:
    path = _write(tmp_path, f'[sync]\nworkers = "{value}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert "(1 problem)" in message
    assert 'expected "auto" or a number of processes from 0 to 64' in message


def test_a_search_too_long_for_one_request_is_refused_at_load(tmp_path: Path) -> None:
    """CT.gov refuses a request head over 8 KB; a 65 KB search made httpx refuse the URL (a
    traceback at every sync). Just under the limit is fine."""
    long_term = " OR ".join(["selinexor"] * 5000)
    path = _write(tmp_path, f'[[queries]]\nname = "Long"\nterm = "{long_term}"\n')
    with pytest.raises(ConfigError, match=r"CT\.gov refuses requests over 8 KB") as caught:
        load_settings(path, env={})
    assert "line 1, column 1: queries[1]:" in str(caught.value)  # where, in the file
    fits = "x" * (MAX_QUERY_BYTES - len("query.term="))
    path = _write(tmp_path, f'[[queries]]\nname = "Fits"\nterm = "{fits}"\n')
    assert load_settings(path, env={}).queries[0].term == fits
    # Measured as the client writes it: a space is %20 (three characters), not "+".
    spaced = " ".join(["ab"] * 1500)  # 4,499 characters, 7,497 once written
    path = _write(tmp_path, f'[[queries]]\nname = "Spaced"\nterm = "{spaced}"\n')
    with pytest.raises(ConfigError, match="7,508 characters"):
        load_settings(path, env={})


def test_a_bare_bracket_in_a_query_is_refused_at_load_naming_the_query(tmp_path: Path) -> None:
    # CT.gov answers a bare [ or ] in a free-text area with a 400: every sync would fail.
    path = tmp_path / "trialwatch.toml"
    path.write_text(
        '[[queries]]\nname = "Selinexor"\nterm = "selinexor [KPT-330]"\n\n'
        '[[queries]]\nname = "Recent"\nterm = "AREA[LastUpdatePostDate]RANGE[2023-01-15,MAX]"\n'
        'intervention = "(selinexor OR KPT-330), oral"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    [problem] = caught.value.problems
    assert f"{path}, line 3, column 8: queries[1].term (name 'Selinexor')" in problem
    assert "a bare '['" in problem

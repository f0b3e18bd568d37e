"""Settings: one validated, frozen object built from TOML and ``TRIALWATCH_*`` variables.

Where settings come from, first match wins:

1. the file named by ``--config PATH``, else ``$TRIALWATCH_CONFIG``, else
   ``./config/trialwatch.toml``; it must exist (:class:`ConfigNotFoundError` names the path);
2. every value can be overridden by ``TRIALWATCH_<SECTION>__<KEY>`` (``TRIALWATCH_API__BASE_URL``);
   lists and objects are given as JSON (``TRIALWATCH_EMAIL__TO='["a@example.org"]'``).

Loading reports every problem at once as one :class:`ConfigError`, each with where its value
came from: the variable, or the file's line and column. Secrets (the SMTP password) come only
from the environment or a secrets file, never the TOML. :func:`starter_config` is the text
``trialwatch init`` writes.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from trialwatch.exceptions import ConfigError
from trialwatch.ids import check_nct_id, nct_id_problem
from trialwatch.models import Category, Severity
from trialwatch.tomlpos import Origins, and_list
from trialwatch.vocabulary import OVERALL_STATUS_LABELS

ENV_PREFIX = "TRIALWATCH_"
CONFIG_ENV = "TRIALWATCH_CONFIG"
DEFAULT_CONFIG_PATH = Path("config/trialwatch.toml")
_CONFLICT = "settings_conflict"
# Essie's bracketed operators (CT.gov's search syntax): the only brackets a query may hold.
_ESSIE_OPERATOR = re.compile(
    r"\b(?:AREA|SEARCH|EXPANSION|COVERAGE|RANGE|DISTANCE|MISSING)\[[^\[\]]*\]"
)
_EMAIL_RE = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

# Environment variables that start with the prefix but are not settings.
_NOT_SETTINGS = frozenset({CONFIG_ENV, "TRIALWATCH_TEST_DATABASE_URL"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _check_email(value: str) -> str:
    if not _EMAIL_RE.match(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"{_redact_url(value)!r} has an invalid port") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{_redact_url(value)!r} is not an http(s) URL")
    return value


def _check_api_url(value: str) -> str:
    """An API's base URL: trialwatch adds its own paths and queries to it, so it may carry
    neither a query nor a fragment (httpx would append the paths after them)."""
    _check_http_url(value)
    if "?" in value or "#" in value:
        raise ValueError(
            f"{_redact_url(value)!r} has a query or a fragment (?… or #…): give the API's base "
            "URL alone, e.g. https://clinicaltrials.gov/api/v2"
        )
    return value


def _check_secret_url(value: str) -> str:
    """Like _check_http_url, but the URL is a secret (Slack/Teams paths): never echo it."""
    try:
        _check_http_url(value)
    except ValueError:
        raise ValueError("not an http(s) URL (value not shown: webhook URLs are secrets)") from None
    return value


def _conflict(message: str, *fields: str) -> PydanticCustomError:
    """An error of several values together, blamed on where each of ``fields`` was set.

    ``fields`` are dotted paths below the validated model (``"email.enabled"`` for Settings).
    Without this, a conflict is reported at the model's own location: a section that the file
    merely mentions would take the blame for values that the environment set.
    """
    # pydantic fills "{fields}" in a message from the context; no other braces are touched.
    return PydanticCustomError(_CONFLICT, message, {"fields": fields})


def _check_cron(value: str) -> str:
    from trialwatch.cron import crontab_trigger  # APScheduler loads only when validating

    trigger = crontab_trigger(value, timezone="UTC")  # raises ValueError with the reason
    # A day that never comes (the 30th of February): the daemon would run once at its start,
    # then never again, saying nothing. Cron has no year: any start tells.
    if trigger.get_next_fire_time(None, _CRON_FROM) is None:
        raise ValueError(f"{value!r} never fires: no such day in any year")
    return value


_CRON_FROM: Final = datetime(2000, 1, 1, tzinfo=UTC)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: ``localhost``, 127.0.0.0/8 or ``::1``.

    Only literal addresses and the name ``localhost``: other names are not resolved here.
    """
    name = host.strip().removeprefix("[").removesuffix("]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _severity(value: Any) -> Any:
    return Severity.parse(value) if isinstance(value, str) else value


EmailAddress = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(_check_email)]
# One address or a list of them.
EmailAddresses = Annotated[tuple[EmailAddress, ...], BeforeValidator(_one_or_many)]
# "critical" | "major" | "minor" | "admin"
SeverityName = Annotated[Severity, BeforeValidator(_severity)]


# Upper bounds: every number a setting takes has one, so that a typo (1e20) is refused where it
# was written instead of overflowing a timedelta or a sleep later (tests/test_config.py walks
# the models to hold this).
_DAY_S = 24 * 3600
_WEEK_S = 7 * _DAY_S
_MONTH_S = 31 * _DAY_S
_MANY = 10_000_000  # trials: far beyond CT.gov's whole registry (~550,000 studies)


class ApiSettings(_Frozen):
    base_url: str = "https://clinicaltrials.gov/api/v2"
    timeout_s: float = Field(30.0, gt=0, le=600)
    # 1.2 s between request starts: at most 50 a minute, the limit clients report for CT.gov.
    min_interval_s: float = Field(1.2, ge=0, le=60)
    max_attempts: int = Field(5, ge=1, le=20)
    backoff_initial_s: float = Field(1.0, gt=0, le=600)
    backoff_max_s: float = Field(60.0, gt=0, le=3600)
    max_retry_after_s: float = Field(120.0, ge=0, le=3600)
    # Ids per request. With comma-separated ids a batch of n makes a URL of 127 + 12·n bytes:
    # 500 -> ~6.1 KB (6.2 KB with a page token), under the common 8 KB limit with room to
    # spare; 650 is the most that fits. At the default 1 request/s pacing, a full sync of N
    # trials costs about N/500 seconds of requests.
    batch_size: int = Field(500, ge=1, le=650)
    # How long a run rides out 429/503 answers without a usable Retry-After (other failures
    # keep max_attempts): throttles are reported to last about a minute.
    throttle_budget_s: float = Field(180.0, ge=0, le=3600)
    # Sent with every request; CT.gov's operators can reach whoever runs this instance through
    # a contact in it, e.g. "trialwatch/0.1 (mailto:ops@example.org)". Default: trialwatch and
    # its version, with the project's address.
    user_agent: str | None = Field(None, min_length=1, max_length=300)
    # The registry's record history (``trialwatch backfill``): by default ``/api/int`` on
    # base_url's origin, where CT.gov's website reads it.
    history_url: str | None = None

    @field_validator("user_agent")
    @classmethod
    def _printable_user_agent(cls, value: str | None) -> str | None:
        if value is not None and not (value.isascii() and value.isprintable()):
            raise ValueError("user_agent must be printable ASCII (it is sent as an HTTP header)")
        return value

    _url = field_validator("base_url")(_check_api_url)
    _history = field_validator("history_url")(
        lambda value: None if value is None else _check_api_url(value)
    )

    @property
    def registry_history_url(self) -> str:
        """Where the record history is read: ``history_url``, else ``/api/int`` on the origin
        of ``base_url`` (``https://clinicaltrials.gov/api/int``)."""
        if self.history_url is not None:
            return self.history_url.rstrip("/")
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}/api/int"


class DatabaseSettings(_Frozen):
    url: str = "sqlite:///data/trialwatch.db"
    # Whether `sync` and `daemon` may upgrade an old schema themselves; else they stop and
    # name `trialwatch db upgrade`. Off by default: an upgrade is a step people choose.
    auto_upgrade: bool = False

    @field_validator("url")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        scheme = value.split(":", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgresql+psycopg"} or "://" not in value:
            raise ValueError(
                f"{_redact_url(value)!r} is not a supported database URL "
                "(use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db)"
            )
        if scheme == "sqlite" and _in_memory(value):
            # Nothing kept from one command to the next: every sync a silent first baseline.
            raise ValueError(
                f"{value!r} is a database in memory, gone when the command ends: give a file "
                "(sqlite:///path/to/file.db)"
            )
        return value


def _in_memory(url: str) -> bool:
    """Whether a SQLite URL names no file: ``sqlite://``, ``sqlite:///:memory:``, or a URI
    filename in memory (``file::memory:``, ``file:x?mode=memory``)."""
    path, _, query = url.split("://", 1)[1].removeprefix("/").partition("?")
    return (
        path in ("", ":memory:")
        or path.startswith("file::memory:")
        or "mode=memory" in query.split("&")
    )


class LoggingSettings(_Frozen):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


LABEL_MAX_LENGTH: Final = 120
"""The longest label a trial may be given (the config's [[watchlist]], `watch add --label`)."""


class WatchlistEntry(_Frozen):
    """One `[[watchlist]]` entry of the config file: a trial as the review lists it (the
    watched trial as stored, with all its sources, is :class:`trialwatch.storage.WatchEntry`)."""

    nct_id: str
    # Optional: without one, the registry's acronym or brief title is shown once synced.
    label: str | None = Field(None, min_length=1, max_length=LABEL_MAX_LENGTH)
    table: str | None = None
    reference: str | None = None

    @field_validator("nct_id", mode="before")
    @classmethod
    def _nct_id(cls, value: Any) -> Any:
        if isinstance(value, str):
            problem = nct_id_problem(value)
            if problem is not None:
                raise ValueError(f"{value!r} is not an NCT number ({problem})")
            return check_nct_id(value)
        return value


def _overall_status(value: Any) -> Any:
    """``"Active, not recruiting"``, ``"active_not_recruiting"`` -> ``"ACTIVE_NOT_RECRUITING"``."""
    if not isinstance(value, str):
        return value
    key = re.sub(r"[^A-Z0-9]+", "_", value.upper()).strip("_")
    key = {"UNKNOWN_STATUS": "UNKNOWN"}.get(key, key)  # as the study pages word it
    if key not in OVERALL_STATUS_LABELS:
        raise ValueError(
            f"{value!r} is not a ClinicalTrials.gov overall status; use one of "
            f"{', '.join(OVERALL_STATUS_LABELS)} (or as the site writes them, e.g. "
            "'Active, not recruiting')"
        )
    return key


def _distinct(values: Any) -> Any:
    return tuple(dict.fromkeys(values)) if isinstance(values, tuple) else values


OverallStatus = Annotated[str, BeforeValidator(_overall_status)]

# A query's search fields and the CT.gov /studies parameters they become.
QUERY_PARAMS: dict[str, str] = {
    "term": "query.term",
    "intervention": "query.intr",
    "condition": "query.cond",
    "sponsor": "query.spons",
}


MAX_QUERY_BYTES: Final = 6000
"""The longest a query's search may be once URL-encoded (the rest of an 8 KB request head is the
client's: base URL, fields, paging)."""


class QueryWatch(_Frozen):
    """A search of the registry (``[[queries]]``): trials entering or leaving its results."""

    name: str = Field(min_length=1, max_length=80)
    term: str | None = Field(None, min_length=1)
    intervention: str | None = Field(None, min_length=1)
    condition: str | None = Field(None, min_length=1)
    sponsor: str | None = Field(None, min_length=1)
    # Only trials whose overall status is one of these; empty: any status.
    status: Annotated[
        tuple[OverallStatus, ...], BeforeValidator(_one_or_many), AfterValidator(_distinct)
    ] = ()
    # Whether matching trials join the watch set (as source "query:<name>").
    track: bool = False

    @field_validator("term", "intervention", "condition", "sponsor")
    @classmethod
    def _no_bare_brackets(cls, value: str | None) -> str | None:
        # CT.gov reads these as Essie expressions and refuses a bare [ or ] with a 400 ("Error
        # parsing query in Other terms: mismatched input '['"): every sync would fail on it.
        # Essie's own operators, AREA[...] and the like, are fine.
        if value is None:
            return value
        bare = _ESSIE_OPERATOR.sub(lambda m: " " * len(m.group()), value)
        for index, char in enumerate(bare):
            if char in "[]":
                # The loader names the query (its name, line and column) before this message.
                raise ValueError(
                    f"a bare {char!r} at character {index + 1} of {value!r}; CT.gov "
                    "refuses brackets outside its operators (AREA[...], RANGE[...]): leave them "
                    'out or quote the words ("KPT-330")'
                )
        return value

    @model_validator(mode="after")
    def _searches_something(self) -> QueryWatch:
        if not any(getattr(self, field) for field in QUERY_PARAMS):
            raise ValueError(f"a query needs at least one of {_or(list(QUERY_PARAMS))}")
        # CT.gov refuses a request head over 8 KB (431); the client adds its fields, paging and
        # the base URL to the search: a longer one could never be asked.
        # Written as the client writes it (trialwatch.ctgov._encode: %20 for a space).
        encoded = len(urlencode(self.ctgov_params(), quote_via=quote, safe=","))
        if encoded > MAX_QUERY_BYTES:
            raise ValueError(
                f"the search is {encoded:,} characters once written into a URL, more than "
                f"{MAX_QUERY_BYTES:,}: CT.gov refuses requests over 8 KB; shorten it, or split "
                "it into several queries"
            )
        return self

    def ctgov_params(self) -> dict[str, str]:
        """The query as ``/studies`` parameters, e.g. ``{"query.intr": "selinexor"}``.

        Only the search itself: paging, ``fields`` and ``countTotal`` are the client's.
        """
        params = {
            param: value for field, param in QUERY_PARAMS.items() if (value := getattr(self, field))
        }
        if self.status:
            params["filter.overallStatus"] = ",".join(self.status)
        return params


class EmailSettings(_Frozen):
    enabled: bool = False
    smtp_host: str = Field("localhost", min_length=1)
    smtp_port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password: SecretStr | None = Field(None, repr=False)
    password_file: Path | None = None
    timeout_s: float = Field(30.0, gt=0, le=600)
    sender: EmailAddress = "trialwatch@localhost.localdomain"
    to: EmailAddresses = ()
    min_severity: SeverityName = Severity.MAJOR
    max_changes: int = Field(50, ge=1, le=1000)
    # With security = "none" a password goes over the wire as written; allowed to loopback only,
    # unless the user says the path is trusted (say, a relay on a private link).
    allow_plaintext_auth: bool = False

    @model_validator(mode="after")
    def _no_cleartext_password(self) -> EmailSettings:
        secret = "password" if self.password is not None else "password_file"
        if (
            self.security == "none"
            and self.username
            and getattr(self, secret) is not None
            and not self.allow_plaintext_auth
            and not is_loopback(self.smtp_host)
        ):
            raise _conflict(
                f'security = "none" would send the SMTP password in clear text to '
                f'{self.smtp_host}: use "starttls" (port 587) or "ssl" (port 465), or set '
                "allow_plaintext_auth = true if every network between here and there is trusted",
                "security",
                "username",
                secret,
                "smtp_host",
            )
        return self

    @field_validator("password_file")
    @classmethod
    def _password_file_readable(cls, value: Path | None) -> Path | None:
        # Checked now, so a bad path is a config error (exit 2, nothing written), not a
        # delivery that fails after the sync has committed.
        if value is None:
            return value
        if not value.is_file():
            raise ValueError(f"{value} is not a file" if value.exists() else f"cannot read {value}")
        if not os.access(value, os.R_OK):
            raise ValueError(f"cannot read {value}")
        try:
            value.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            # Not echoed: it would be the password, or a binary named by mistake.
            raise ValueError(f"{value} is not UTF-8 text (the password file?)") from None
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        return value

    def resolved_password(self) -> str | None:
        """The password from the environment, else from ``password_file``; never logged."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                # Read when a message is sent: the file may have gone since the settings loaded.
                raise ConfigError(
                    [f"cannot read [email] password_file {self.password_file}: {exc.strerror}"]
                ) from exc
            except UnicodeDecodeError:  # rewritten since the settings loaded
                raise ConfigError(
                    [f"[email] password_file {self.password_file} is not UTF-8 text"]
                ) from None
        return None


class Subscription(_Frozen):
    """Extra recipients with their own filter. Empty ``trials``/``categories`` mean all."""

    name: str | None = None
    to: EmailAddresses = ()
    webhook_url: SecretStr | None = Field(None, repr=False)
    trials: tuple[str, ...] = ()
    min_severity: SeverityName = Severity.MAJOR
    categories: tuple[Category, ...] = ()
    mode: Literal["immediate", "daily", "weekly"] = "immediate"

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_secret_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _has_channel(self) -> Subscription:
        if not self.to and self.webhook_url is None:
            raise ValueError("a subscription needs `to` (email addresses) or `webhook_url`")
        return self


class ScheduleSettings(_Frozen):
    # CT.gov refreshes Monday-Friday, generally done by 9 a.m. US Eastern.
    cron: str = "20 9 * * 1-5"
    timezone: str = "America/New_York"
    jitter_s: int = Field(600, ge=0, le=3600)
    interval_seconds: int | None = Field(None, ge=1, le=_MONTH_S)
    misfire_grace_s: int = Field(6 * 3600, ge=1, le=_WEEK_S)
    flush_interval_s: int = Field(60, ge=1, le=_DAY_S)
    daily_digest_cron: str = "0 8 * * *"
    weekly_digest_cron: str = "0 8 * * 1"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    _cron = field_validator("cron", "daily_digest_cron", "weekly_digest_cron")(_check_cron)


def _workers(value: object) -> object:
    """``"auto"`` or a count of processes from 0 to 64, as one plain error otherwise."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    count = value
    if isinstance(value, str) and value.strip().isdigit():
        count = int(value.strip())
    if type(count) is not int or not 0 <= count <= 64:
        raise ValueError(f'expected "auto" or a number of processes from 0 to 64, got {value!r}')
    return count


class SyncSettings(_Frozen):
    # Watch sets larger than this ask CT.gov only for what it updated since the last complete
    # sync; 0 disables incremental mode (every sync fetches every watched trial).
    incremental_above: int = Field(5000, ge=0, le=_MANY)
    # The full sweep that catches what an incremental query misses; crontab syntax, in
    # [schedule] timezone. Saturday morning: CT.gov does not refresh at weekends.
    full_sweep_cron: str = "0 6 * * 6"
    # A progress bar on stderr: "auto" only on a terminal (never in JSON logs).
    progress: Literal["auto", "always", "never"] = "auto"
    # Worker processes that normalize the records of a large page beside the syncing one;
    # "auto": one per core but one (at most 4), 0: none.
    workers: Annotated[Literal["auto"] | int, BeforeValidator(_workers)] = "auto"

    _cron = field_validator("full_sweep_cron")(_check_cron)

    def incremental(self, watched: int) -> bool:
        """Whether a watch set of ``watched`` trials syncs incrementally."""
        # Imported here: the decision module brings the diff rules, which loading settings
        # (every command, `status` among them) does not need.
        from trialwatch.decision import syncs_incrementally

        return syncs_incrementally(watched, self.incremental_above)


class OutboxSettings(_Frozen):
    backoff_initial_s: float = Field(60.0, gt=0, le=_DAY_S)
    backoff_max_s: float = Field(3600.0, gt=0, le=_WEEK_S)
    max_attempts: int = Field(48, ge=1, le=1000)
    lease_s: float = Field(300.0, gt=0, le=_DAY_S)
    # A run that changes more trials than either limit is a flood: recipients get one summary
    # instead of a long report per subscription, and the admin is told why. 0 disables a rule.
    # The rule itself is trialwatch.sync.FloodRule (the fraction needs 10 trials at least, so
    # three of the review's 13 trials changing on one day is still three reports).
    flood_max_trials: int = Field(50, ge=0, le=_MANY)
    flood_max_fraction: float = Field(0.2, ge=0, le=1)


class HealthSettings(_Frozen):
    admin_email: EmailAddress | None = None
    max_consecutive_failures: int = Field(3, ge=1, le=1000)
    max_data_age_hours: float = Field(96.0, gt=0, le=1_000_000)  # about 114 years


class WebSettings(_Frozen):
    """``trialwatch serve`` and the daemon's page (``enabled``). Read-only, loopback by default:
    any other ``host`` needs ``token_file`` (checked when serving, where the host is known)."""

    enabled: bool = False
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8080, ge=0, le=65535)
    # A file holding the bearer token every request must carry (header, or the cookie a
    # one-time link sets); a separate read-only token a feed reader may put in the feed's URL.
    token_file: Path | None = None
    feed_token_file: Path | None = None
    # Where people open the page (behind a proxy: its public address): emails link trials here.
    public_url: str | None = None
    # The tagging authority of the Atom feed's ids (RFC 4151: a domain or an email address the
    # deployment owns). Set it once, before the feed is first read: every id changes with it.
    feed_authority: str | None = Field(
        None,
        pattern=r"^(?:[A-Za-z0-9._%+-]+@)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$",
    )
    page_size: int = Field(1000, ge=10, le=5000)

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> WebSettings:
        if not is_loopback(self.host) and self.token_file is None:
            raise _conflict(
                f"serving on {self.host} needs a token: set [web] token_file, or keep the "
                "page on 127.0.0.1 behind a reverse proxy",
                "host",
                "token_file",
            )
        return self

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value).rstrip("/")

    @field_validator("token_file", "feed_token_file")
    @classmethod
    def _token_file_readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            _read_token(value)
        return value

    def token(self) -> str | None:
        return None if self.token_file is None else _read_token(self.token_file)

    def feed_token(self) -> str | None:
        return None if self.feed_token_file is None else _read_token(self.feed_token_file)


_MIN_TOKEN_CHARS = 16


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(token) < _MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ValueError(
            f"{path} must hold one token of at least {_MIN_TOKEN_CHARS} characters, no spaces "
            "(e.g. from: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


class Settings(_Frozen):
    api: ApiSettings = ApiSettings()
    database: DatabaseSettings = DatabaseSettings()
    logging: LoggingSettings = LoggingSettings()
    email: EmailSettings = EmailSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    sync: SyncSettings = SyncSettings()
    outbox: OutboxSettings = OutboxSettings()
    health: HealthSettings = HealthSettings()
    web: WebSettings = WebSettings()
    subscriptions: tuple[Subscription, ...] = ()
    watchlist: tuple[WatchlistEntry, ...] = ()
    queries: tuple[QueryWatch, ...] = ()

    @model_validator(mode="after")
    def _alerts_need_email(self) -> Settings:
        if self.health.admin_email and not self.email.enabled:
            raise _conflict(
                "health.admin_email is set but [email] enabled is false: alerts could not be sent",
                "health.admin_email",
                "email.enabled",
            )
        return self


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """``--config`` wins, then ``$TRIALWATCH_CONFIG``, then ``./config/trialwatch.toml``."""
    return _choose_config(explicit, env)[0]


def _choose_config(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> tuple[Path, str]:
    """The settings file to read and how it was chosen, in words for an error message."""
    if explicit:
        return Path(explicit), "from --config"
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]), f"from ${CONFIG_ENV}"
    return DEFAULT_CONFIG_PATH, f"the default; neither --config nor ${CONFIG_ENV} is set"


class ConfigNotFoundError(ConfigError):
    """No settings file where trialwatch looked; ``looked_at`` lists those paths.

    Every command needs its settings: without them a command would watch nothing, call an empty
    database healthy and create ``./data/trialwatch.db`` wherever it was started.
    """

    def __init__(self, looked_at: Path, how: str) -> None:
        self.looked_at: tuple[Path, ...] = (looked_at,)
        shown = looked_at if looked_at.is_absolute() else Path.cwd() / looked_at
        message = (
            f"no config file: looked at {shown} ({how}). Write one with `trialwatch init`, "
            f"or point --config or ${CONFIG_ENV} at your settings file."
        )
        super().__init__([message])
        self.args = (message,)  # one sentence, not "invalid configuration (1 problem)"


def starter_config() -> str:
    """The text of a commented starter settings file, for ``trialwatch init`` to write.

    The review's 13 trials as the example watch set, a query for new Selinexor trials, and
    every other setting commented out at its default. The text is package data
    (``trialwatch/starter.toml``) in which each default is written ``{section.key}`` (and a
    bound ``{section.key.le}``) and filled in here from :class:`Settings`, so that the starter
    cannot tell another default than the code. Writing it, and refusing to overwrite, is the
    caller's.
    """
    template = resources.files("trialwatch").joinpath("starter.toml").read_text(encoding="utf-8")
    return "\n".join(_starter_line(line) for line in template.split("\n"))


_STARTER_FIELD = re.compile(r"\{(\w+)\.(\w+)(?:\.(le|ge|lt|gt))?\}")
_STARTER_COMMENT = re.compile(r"(# \w+ = .*?) {2,}(# .*)")
_STARTER_COMMENT_COLUMN = 30


def _starter_line(line: str) -> str:
    filled = _STARTER_FIELD.sub(_starter_value, line)
    if filled != line and (aligned := _STARTER_COMMENT.fullmatch(filled)):
        # A default's own comment starts at one column, however long the default.
        head, comment = aligned.groups()
        filled = f"{head.ljust(_STARTER_COMMENT_COLUMN - 2)}  {comment}"
    return filled


def _starter_value(match: re.Match[str]) -> str:
    section, key, bound = match.groups()
    model = Settings.model_fields[section].default
    if not isinstance(model, BaseModel) or key not in type(model).model_fields:
        raise KeyError(f"starter.toml names {match.group()}, which is no setting")  # a bug
    if bound is None:
        return _toml_value(getattr(model, key))
    field = type(model).model_fields[key]
    limits = [getattr(m, bound) for m in field.metadata if hasattr(m, bound)]
    if not limits:
        raise KeyError(f"starter.toml names {match.group()}, which is no bound")  # a bug
    return _toml_value(limits[0])


def _toml_value(value: object) -> str:
    """A default as TOML writes it: ``"major"`` for a severity, ``30`` for 30.0."""
    if isinstance(value, Severity):
        return json.dumps(value.name.lower())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for the default {value!r}")  # a bug: a new kind of setting


def load_settings(
    explicit_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Read, merge and validate the settings; raise one ConfigError listing every problem.

    The file must exist: :class:`ConfigNotFoundError` (a ConfigError) names the path looked at.
    Nothing is created or written here.
    """
    env = os.environ if env is None else env
    path, how = _choose_config(explicit_path, env)
    problems: list[str] = []

    text, data = _read_toml(path, how)
    origins = Origins(path, text)
    origins.record(data, (), None)
    if isinstance(data.get("email"), dict) and "password" in data["email"]:
        problems.append(
            f"{origins.where(('email', 'password'), at_key=True)}: [email] password must not be "
            "written in the config file; set TRIALWATCH_EMAIL__PASSWORD or email.password_file "
            "instead"
        )
        data["email"].pop("password")

    problems.extend(_apply_env(data, env, origins))

    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(err, data, origins) for err in exc.errors())

    problems.extend(_duplicates(data, origins))
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings


_TOML_AT = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.DOTALL)


def _read_toml(path: Path, how: str) -> tuple[str, dict[str, Any]]:
    """The file's text and TOML; every way it cannot be read is one clear ConfigError."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigNotFoundError(path, how) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a settings file"]) from None
    except PermissionError:
        raise ConfigError(
            [f"{path}: cannot read the config file: permission denied (check its owner and mode)"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc.strerror}"]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Line and column, as an editor shows them, rather than a byte offset.
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
        raise ConfigError(
            [
                f"{path}, line {line}, column {column}: not UTF-8 text "
                f"(byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
            ]
        ) from None
    text = text.removeprefix("\ufeff")  # a byte order mark, as some Windows editors write
    try:
        return text, tomllib.loads(text)
    except RecursionError:
        raise ConfigError([f"{path}: not valid TOML: its arrays or tables nest too deep"]) from None
    except ValueError as exc:
        if not isinstance(exc, tomllib.TOMLDecodeError):
            # Raised by int() inside the parser: a number with more digits than Python reads.
            raise ConfigError(
                [f"{path}: not valid TOML: a number has more digits than can be read"]
            ) from None
        match = _TOML_AT.match(str(exc))
        if match:
            where = f"{path}, line {match['line']}, column {match['col']}"
            message = match["msg"]
        else:
            where = f"{path}, at the end of the file"
            message = str(exc).removesuffix(" (at end of document)")
        raise ConfigError([f"{where}: not valid TOML: {message}"]) from None


def _or(items: Sequence[str]) -> str:
    return and_list(items, "or")


def _apply_env(data: dict[str, Any], env: Mapping[str, str], origins: Origins) -> list[str]:
    problems = []
    sections = {
        name for name, info in Settings.model_fields.items() if isinstance(info.default, BaseModel)
    }
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        rest = name[len(ENV_PREFIX) :]
        if "__" not in rest:
            continue
        section, key = (part.lower() for part in rest.split("__", 1))
        where = f"environment variable {name}"
        if section not in sections:
            problems.append(f"{where}: unknown section [{section}]")
            continue
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            continue
        raw = env[name]
        if raw == "":
            continue  # an empty variable (`-e VAR=`, an unset `${VAR}` in compose) is unset
        value: Any = raw
        if raw[0] in "[{":
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(f"{where}: not valid JSON ({exc.msg})")
                continue
        target[key] = value
        origins.record(value, (section, key), name)
    return problems


def _describe(err: Any, data: Mapping[str, Any], origins: Origins) -> str:
    loc = tuple(str(p) for p in err["loc"])
    unknown = err["type"] == "extra_forbidden"
    origin = origins.where(loc, at_key=unknown)
    where = _dotted(loc, data)
    message = err["msg"]
    if err["type"] == _CONFLICT:
        fields = [(*loc, *field.split(".")) for field in err["ctx"]["fields"]]
        origin = origins.blame(loc, fields)
    if unknown:
        message = _unknown_key(loc)
    elif message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if not unknown and "password" not in where and "webhook" not in where:
        given = err.get("input")
        if isinstance(given, str | int | float | bool) and repr(given) not in message:
            message = f"{message} (got {given!r})"
    return f"{origin}: {where}: {message}" if where else f"{origin}: {message}"


def _unknown_key(loc: tuple[str, ...]) -> str:
    """``unknown setting; allowed: a, b, c (did you mean b?)``."""
    allowed = _keys_at(loc[:-1])
    if not allowed:
        return "unknown setting"
    if loc[:1] == ("email",):
        allowed.remove("password")  # allowed only from the environment, said elsewhere
    message = f"unknown setting; allowed: {', '.join(allowed)}"
    # CT.gov's own short names (query.intr) are what people who know the API will write.
    hints = {param.split(".")[1]: key for key, param in QUERY_PARAMS.items()}
    close = difflib.get_close_matches(loc[-1], allowed, n=1)
    if loc[0] == "queries" and loc[-1] in hints:
        close = [hints[loc[-1]]]
    return f"{message} (did you mean {close[0]}?)" if close else message


def _keys_at(loc: tuple[str, ...]) -> list[str]:
    """The keys the settings allow at ``loc`` (``("queries", "0")``); [] if not a table."""
    model: type[BaseModel] = Settings
    for part in loc:
        if part.isdigit():
            continue  # an entry of a list of tables
        field = model.model_fields.get(part)
        found = None if field is None else _model_in(field.annotation)
        if found is None:
            return []
        model = found
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _dotted(loc: tuple[str, ...], data: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for part in loc:
        if part.isdigit() and parts:
            parts[-1] = f"{parts[-1]}[{int(part) + 1}]"
        else:
            parts.append(part)
    text = ".".join(parts)
    # Name the watched trial by its label (or id) too, so the user can find it in the file.
    if len(loc) >= 2 and loc[0] == "watchlist" and loc[1].isdigit():
        entries = data.get("watchlist")
        if isinstance(entries, list) and int(loc[1]) < len(entries):
            entry = entries[int(loc[1])]
            if not isinstance(entry, dict):
                return text
            if isinstance(entry.get("label"), str) and entry["label"].strip():
                text += f" (label {entry['label']!r})"
            elif loc[2:] != ("nct_id",) and isinstance(entry.get("nct_id"), str):
                text += f" ({entry['nct_id']})"
    if len(loc) >= 3 and loc[0] == "queries" and loc[1].isdigit() and loc[2] != "name":
        entries = data.get("queries")
        if isinstance(entries, list) and int(loc[1]) < len(entries):
            entry = entries[int(loc[1])]
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                text += f" (name {entry['name']!r})"
    return text


def _duplicates(data: Mapping[str, Any], origins: Origins) -> list[str]:
    """Watched trials listed twice, queries named twice (names are sources: ``query:<name>``)."""
    problems = []
    for section, key, what in (("watchlist", "nct_id", "listed"), ("queries", "name", "used")):
        entries = data.get(section)
        if not isinstance(entries, list):
            continue
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get(key), str):
                continue
            value = entry[key].strip()
            same = value.upper() if section == "watchlist" else value.casefold()
            if same in seen:
                shown = same if section == "watchlist" else repr(value)
                problems.append(
                    f"{origins.where((section, str(i), key))}: {section}[{i + 1}].{key}: "
                    f"{shown} is {what} twice (also {section}[{seen[same] + 1}])"
                )
            else:
                seen[same] = i
    return problems


def _redact_url(url: str) -> str:
    """Drop any password from a URL before it is shown anywhere."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


redact_url = _redact_url

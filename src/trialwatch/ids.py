"""What an NCT id is: one validator for every door an id comes in by (settings, ``watch add``,
``watch import``, the CT.gov client). Pure.

The registry's own rule is the API spec's pattern ``^[Nn][Cc][Tt]0*[1-9]\\d{0,7}$`` on every id
of a ``filter.ids`` request, and one id that fails it makes CT.gov refuse the whole request: so an
id is checked here before it is stored, never first by the server. On top of the pattern, an id
is written as the registry prints it: ``NCT`` and exactly 8 ASCII digits. Full-width digits
(``ＮＣＴ０１２…`` pasted from East Asian text) are folded to ASCII; digits of other scripts are
refused (the server's ``\\d`` is ASCII only); ``NCT00000000``, the placeholder papers print, is
refused with that reason.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Final

__all__ = [
    "REFUSED_PREFIX",
    "InvalidNctIdError",
    "check_nct_id",
    "fold_nct_id",
    "is_canonical",
    "match_trial_names",
    "nct_id_problem",
    "refused_mark",
]

REFUSED_PREFIX: Final = "refused by CT.gov"
"""How a trial whose id the registry refuses to look up is marked (``watch list``, ``status``)."""

# The API spec's pattern for filter.ids and /studies/{nctId}, with \d made ASCII (the server's).
SPEC_PATTERN: Final = re.compile(r"[Nn][Cc][Tt]0*[1-9][0-9]{0,7}")
_WRITTEN: Final = re.compile(r"NCT([0-9]*)")
# An id exactly as the registry writes it: NCT, 8 ASCII digits, not all zeros.
_CANONICAL: Final = re.compile(r"NCT(?!0{8})[0-9]{8}")
# Full-width Latin letters and digits, as East Asian input methods type them.
_FOLD: Final = str.maketrans(
    {
        **{0xFF10 + d: str(d) for d in range(10)},
        **{0xFF21 + i: chr(ord("A") + i) for i in range(26)},
        **{0xFF41 + i: chr(ord("a") + i) for i in range(26)},
    }
)


class InvalidNctIdError(ValueError):
    """Not an NCT id; the message says why."""


def is_canonical(raw: str) -> bool:
    """Whether ``raw`` is an id exactly as the registry writes it (``NCT`` and 8 ASCII digits,
    not all zeros): valid, and already folded."""
    return _CANONICAL.fullmatch(raw) is not None


def fold_nct_id(raw: str) -> str:
    """``raw`` stripped, full-width letters and digits folded to ASCII, upper-cased."""
    return raw.strip().translate(_FOLD).upper()


def nct_id_problem(raw: str) -> str | None:
    """Why ``raw`` (after :func:`fold_nct_id`) is not an NCT id, in a few words; None if it is."""
    if is_canonical(raw):
        return None  # the registry's own form (every stored id): nothing to fold
    text = fold_nct_id(raw)
    foreign = [c for c in text if not c.isascii() and unicodedata.category(c) == "Nd"]
    if foreign:
        script = unicodedata.name(foreign[0], "a digit").split(" DIGIT")[0].title()
        return f"digits of another script ({script}); NCT ids use 0-9"
    match = _WRITTEN.fullmatch(text)
    if match is None:
        return "expected NCT followed by 8 digits, e.g. NCT02606461"
    digits = match.group(1)
    if len(digits) != 8:
        noun = "digit" if len(digits) == 1 else "digits"
        return f"{len(digits)} {noun}; NCT ids have 8"
    if not SPEC_PATTERN.fullmatch(text):
        # Only zeros: no trial has it, and CT.gov refuses every request that holds it.
        return "a placeholder, not a registered trial (CT.gov refuses NCT00000000)"
    return None


def check_nct_id(raw: str) -> str:
    """The id as the registry writes it (``NCT`` and 8 digits), or :class:`InvalidNctIdError`
    naming ``raw`` and the reason."""
    problem = nct_id_problem(raw)
    if problem is not None:
        raise InvalidNctIdError(f"{raw.strip()!r} is not an NCT number: {problem}")
    return fold_nct_id(raw)


def match_trial_names(key: str, names: Iterable[tuple[str, str | None]]) -> list[str]:
    """The NCT ids that ``key`` names among ``names`` (pairs of an NCT id and one of its names:
    a label or the registry's acronym), sorted: none, one, or several (ambiguous).

    The rule, the same wherever a trial is named: case does not matter, and the first of these
    that matches anything decides, so a full name always beats a prefix of another —
    the whole name (``SEAL``); the text before a name's first colon (``METSSAR`` for
    "METSSAR: selinexor dosing schedules in sarcoma"); the start of a name (``metss``).
    An NCT id is not looked up here: the caller knows which ids exist.
    """
    wanted = " ".join(key.split()).casefold()
    if not wanted:
        return []
    folded = [
        (nct_id, " ".join(name.split()).casefold())
        for nct_id, name in names
        if name and name.strip()
    ]
    tiers: tuple[Callable[[str], bool], ...] = (
        lambda name: name == wanted,
        lambda name: ":" in name and name.split(":", 1)[0].strip() == wanted,
        lambda name: name.startswith(wanted),
    )
    for matches in tiers:
        found = {nct_id for nct_id, name in folded if matches(name)}
        if found:
            return sorted(found)
    return []


def refused_mark(stored: str) -> str | None:
    """The mark of an id already stored (by a version before this validator) that CT.gov would
    refuse in ``filter.ids``: ``"refused by CT.gov: <why>"``; None for an id as the registry
    writes it. A stored id must be exactly that form: one still holding full-width digits is
    sent as stored, and refused."""
    problem = nct_id_problem(stored)
    if problem is None and fold_nct_id(stored) != stored:
        problem = "not written as the registry writes it (NCT and 8 ASCII digits)"
    return None if problem is None else f"{REFUSED_PREFIX}: {problem}"

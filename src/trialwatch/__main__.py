"""``python -m trialwatch`` is the ``trialwatch`` command, and this is its console script's
entry point too.

Cheap to import on purpose: a sync's worker process (started by ``spawn``) runs the parent's
main script again before it prepares anything, and the console script imports this module.
Had it imported :mod:`trialwatch.cli` (typer, every command module), each worker would have
spent ~0.15 s on a command line it never reads.
"""

import gc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class _LeanImports:
    """Keeps out what two libraries import for features trialwatch never uses: ~90 modules,
    8 % of the instructions every command spends importing (callgrind, ``sync``).

    - httpx imports its own command-line client, ``httpx._main``, and with it click, rich and
      pygments. Refused, httpx falls back to a ``main`` that says its CLI is not installed.
    - structlog imports rich, when installed (typer brings it), for its console renderer's
      tracebacks and its pretty repr of locals; trialwatch renders each exception itself
      (``format_exc_info``) before a renderer sees it. Refused while structlog is importing,
      structlog uses its plain fallbacks. rich stays importable for what uses it (the sync's
      progress bar), as any module does once it has been imported.

    Both libraries guard these imports with ``except ImportError``. Only the console script
    installs this finder: the process is trialwatch's alone.
    """

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "httpx._main" or (name == "rich" and _importing("structlog")):
            raise ModuleNotFoundError(f"No module named {name!r} (not loaded by trialwatch)")
        return None


def _importing(name: str) -> bool:
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def main() -> None:
    """Console-script entry point: the command line, parsed and run."""
    if _LeanImports not in sys.meta_path:
        sys.meta_path.insert(0, _LeanImports)
    # No garbage collection while the command imports and wires itself: the ~90,000 objects
    # that SQLAlchemy, pydantic, typer and the app create set off a collection every 700
    # allocations, each walking the objects made so far; ~10 % of the imports' time (0.355 ->
    # 0.320 s, five alternate runs). Imports make almost no cyclic garbage. The command turns
    # collection back on once it has imported what it needs, before it opens its database
    # (trialwatch.cli._common.startup_over); the finally below turns it on in any case.
    gc.disable()
    from trialwatch.cli import main as run
    from trialwatch.cli._common import state

    state.own_process = True
    try:
        run()
    finally:
        # The interpreter's shutdown collects garbage over every object still alive: ~90,000
        # once SQLAlchemy, pydantic and typer are loaded, 0.3 to 0.5 s of every command here (a
        # fifth of an idle poll), for memory the process is about to give back anyway.
        # Frozen objects are left out of those collections. Nothing is lost: atexit handlers
        # (logging's flush) and the flush of stdout and stderr run as before, and the command
        # closed its database and connections when it returned. Collection is on again
        # whatever the command did (one that failed before opening its app left it off).
        gc.freeze()
        gc.enable()


if __name__ == "__main__":  # not when a worker process (spawn) imports it
    main()

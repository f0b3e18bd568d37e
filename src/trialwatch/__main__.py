"""``python -m trialwatch`` is the ``trialwatch`` command."""

from trialwatch.cli import main

main()

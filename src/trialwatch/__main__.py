"""``python -m trialwatch`` is the ``trialwatch`` command."""

from trialwatch.cli import main

if __name__ == "__main__":  # not when a worker process (spawn) imports it
    main()

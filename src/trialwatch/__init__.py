"""trialwatch: watch ClinicalTrials.gov records and hear, once, when they change."""

from trialwatch.exceptions import TrialwatchError

__version__ = "0.2.0"  # the one place the version is written (pyproject reads it)
__all__ = ["TrialwatchError", "__version__"]

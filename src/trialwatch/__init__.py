"""trialwatch: watch ClinicalTrials.gov records and hear, once, when they change."""

from trialwatch.exceptions import TrialwatchError

__version__ = "0.1.0"
__all__ = ["TrialwatchError", "__version__"]

"""Data drift and data quality: mergeable column profiles and sketch-aware drift tests.

>>> from inferwatch.drift import Profile, compare
>>> baseline = Profile.build(train_df, predictions=model.predict(train_df), labels=y_train)
>>> report = compare(baseline, live_df, alpha=0.05)
>>> report.drifted, report.drifted_columns
"""

from inferwatch.drift.compare import ColumnDrift, DriftReport, compare
from inferwatch.drift.profile import FORMAT_VERSION, ColumnProfile, Profile

__all__ = ["FORMAT_VERSION", "ColumnDrift", "ColumnProfile", "DriftReport", "Profile", "compare"]

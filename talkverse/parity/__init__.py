"""Numeric parity against the reference fixtures (``../shared/reference/parity/`` layout).

Each suite yields ``CaseResult``s; ``scripts/check_parity.py`` prints one line per case.
"""

from .common import SUITES, CaseResult, fixture_model, get_suite, run_suites

__all__ = ["CaseResult", "SUITES", "fixture_model", "get_suite", "run_suites"]

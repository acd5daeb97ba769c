"""Numeric parity against the reference fixtures (``../shared/reference/parity/`` layout).

Each suite yields ``CaseResult``s; ``scripts/check_parity.py`` prints one line per case.
"""

from .common import CaseResult, run_suites, SUITES

__all__ = ["CaseResult", "SUITES", "run_suites"]

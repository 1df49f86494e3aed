"""Contract audit: compiler warnings, Slither, forge fuzz/invariant tests, gas, access control.

``fedchain audit`` (and ``make audit``) runs every part in turn, shows progress on
the console, writes ``audit/report.md`` and exits non-zero when any part fails.
"""

from fedchain.audit.runner import run_audit

__all__ = ["run_audit"]

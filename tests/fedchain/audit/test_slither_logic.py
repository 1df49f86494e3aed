"""Matching Slither findings to dispositions, and a real run (`make test` installs Slither)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fedchain.audit.slither import (
    DISPOSITIONS,
    VENV_DIR,
    Disposition,
    Finding,
    SlitherPart,
    assign,
    load_dispositions,
    parse_findings,
)
from fedchain.audit.types import AuditSettings
from tests.fedchain.audit.conftest import REPO

FUNCTION = "Federation.submitUpdate(uint256,uint32,bytes,uint64,uint32)"


def finding(impact: str = "Medium", expressions: tuple[str, ...] = ("s.a == s.b",)) -> Finding:
    return Finding("incorrect-equality", impact, "High", FUNCTION, expressions, "x#L1", "d")


def disposition(**overrides: Any) -> Disposition:
    fields: dict[str, Any] = {
        "check": "incorrect-equality",
        "function": FUNCTION,
        "expressions": ("s.a == s.b", "s.c == 0"),
        "must_not_mention": ("timestamp",),
        "verdict": "false positive",
        "reason": "counters",
    }
    fields.update(overrides)
    return Disposition(**fields)


def test_a_precise_disposition_covers_its_finding() -> None:
    assert disposition().covers(finding())


def test_a_new_expression_in_the_same_function_is_not_covered() -> None:
    assert not disposition().covers(finding(expressions=("s.a == s.b", "s.d == 1")))


def test_the_guard_rejects_expressions_that_mention_time() -> None:
    assert not disposition(expressions=None).covers(
        finding(expressions=("block.timestamp == s.deadline",))
    )


def test_a_detector_wide_disposition_never_covers_high_or_medium() -> None:
    wide = disposition(function=None, expressions=None)
    assert not wide.covers(finding("Medium"))
    assert wide.covers(finding("Low"))


def test_unexplained_findings_are_returned_without_disposition() -> None:
    pairs = assign([finding(), finding(expressions=("other == 1",))], [disposition()])
    assert [d is not None for _, d in pairs] == [True, False]


def test_findings_are_read_from_slither_json() -> None:
    data = {
        "success": True,
        "results": {
            "detectors": [
                {
                    "check": "uninitialized-local",
                    "impact": "Medium",
                    "confidence": "Medium",
                    "description": "x is never initialized",
                    "first_markdown_element": "c.sol#L3",
                    "elements": [
                        {
                            "type": "variable",
                            "name": "s",
                            "type_specific_fields": {
                                "parent": {
                                    "type": "function",
                                    "name": "f",
                                    "type_specific_fields": {
                                        "signature": "f(uint256)",
                                        "parent": {"name": "C"},
                                    },
                                }
                            },
                        }
                    ],
                }
            ]
        },
    }
    (f,) = parse_findings(data)
    assert (f.check, f.function, f.expressions) == (
        "uninitialized-local",
        "C.f(uint256)",
        ("variable s",),
    )


def test_the_project_dispositions_file_is_valid() -> None:
    entries = load_dispositions(REPO / DISPOSITIONS)
    assert entries and all(len(d.reason) > 40 for d in entries)
    assert all(d.function for d in entries if d.check == "incorrect-equality")


def test_slither_findings_are_all_explained(tmp_path: Path) -> None:
    if not (REPO / VENV_DIR / "bin" / "slither").exists():
        pytest.fail(f"{VENV_DIR}/ is absent: `make audit-env` (part of `make test`) installs it")
    result = SlitherPart().run(AuditSettings(repo=REPO, out_dir=tmp_path), lambda _l: None)
    assert result.passed, result.markdown
    assert "| High | 0 |" in result.markdown

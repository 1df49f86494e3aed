"""Naming and completeness checks of the access-control matrix, on hand-made raw cells."""

from __future__ import annotations

from typing import Any

from eth_utils.crypto import keccak

from fedchain.audit.matrix import build_matrix, render

ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "poke",
        "inputs": [{"type": "uint256"}],
        "stateMutability": "nonpayable",
    },
    {"type": "function", "name": "peek", "inputs": [], "stateMutability": "view"},
    {"type": "error", "name": "NotMember", "inputs": [{"type": "address"}]},
]


def sel(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


def cell(
    signature: str, role: str, ok: bool, revert: str = "", mutates: bool = True
) -> dict[str, Any]:
    return {
        "selector": sel(signature),
        "role": role,
        "ok": ok,
        "revert": revert,
        "mutates": mutates,
    }


def complete_raw() -> dict[str, Any]:
    not_member = sel("NotMember(address)") + "00" * 32
    return {
        "roles": ["outsider", "member"],
        "cells": [
            cell("poke(uint256)", "outsider", False, not_member),
            cell("poke(uint256)", "member", True),
            cell("peek()", "outsider", True, mutates=False),
            cell("peek()", "member", True, mutates=False),
        ],
    }


def test_cells_are_named_from_the_abi() -> None:
    m = build_matrix(complete_raw(), ABI)
    assert m.problems == ()
    assert m.functions == ("poke(uint256)", "peek()")
    refused = m.cell("poke(uint256)", "outsider")
    assert refused is not None and (refused.allowed, refused.error) == (False, "NotMember")
    table = render(m)
    assert "| `poke(uint256)` | `NotMember` | allowed |" in table
    assert "| `peek()` | allowed | allowed |" in table


def test_a_function_without_a_row_is_a_problem() -> None:
    raw = complete_raw()
    raw["cells"] = [c for c in raw["cells"] if c["selector"] != sel("peek()")]
    m = build_matrix(raw, ABI)
    assert m.problems == ("peek() has no row (the forge test does not call it)",)


def test_a_missing_role_is_a_problem() -> None:
    raw = complete_raw()
    raw["cells"] = raw["cells"][1:]
    assert build_matrix(raw, ABI).problems == ("poke(uint256) lacks roles outsider",)


def test_refusals_that_are_not_custom_errors_are_problems() -> None:
    raw = complete_raw()
    string_error = "0x08c379a0" + "00" * 64
    raw["cells"][0] = cell("poke(uint256)", "outsider", False, string_error)
    raw["cells"].append(cell("poke(uint256)", "outsider", False, "0x"))
    problems = build_matrix(raw, ABI).problems
    assert "poke(uint256) as outsider: refused with Error(string)" in problems
    assert "poke(uint256) as outsider: refused with revert without data" in problems


def test_an_unknown_selector_is_a_problem() -> None:
    raw = complete_raw()
    raw["cells"].append(cell("gone()", "member", True))
    assert build_matrix(raw, ABI).problems == (
        f"selector {sel('gone()')} is not a function of the contract",
    )

"""A small, typed reading of a contract ABI: call encoding, output decoding, selectors.

web3's contract objects do this too, but they hide the raw revert data the
ledger needs for its named errors and add work on every call; this module is
the few lines the client actually needs, built once per ABI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak


def abi_type(param: Mapping[str, Any]) -> str:
    """The canonical type string of one ABI parameter (tuples spelled out)."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def signature(name: str, params: Iterable[Mapping[str, Any]]) -> str:
    return f"{name}({','.join(abi_type(p) for p in params)})"


def normalize(value: Any, kind: str) -> Any:
    """Decoded ABI values in the client's conventions: checksummed addresses, tuples kept."""
    if kind == "address":
        return to_checksum_address(value)
    if kind.endswith("[]") and isinstance(value, (list, tuple)):
        return [normalize(v, kind[:-2]) for v in value]
    return value


@dataclass(frozen=True)
class FunctionAbi:
    name: str
    selector: bytes
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    mutates: bool


@dataclass(frozen=True)
class ErrorAbi:
    name: str
    selector: bytes
    input_types: tuple[str, ...]
    input_names: tuple[str, ...]


@dataclass(frozen=True)
class EventAbi:
    name: str
    topic0: bytes
    names: tuple[str, ...]
    types: tuple[str, ...]
    indexed: tuple[bool, ...]


class ContractAbi:
    """Functions, custom errors and events of one contract, indexed for fast lookup."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self.abi = tuple(abi)
        self.functions: dict[str, FunctionAbi] = {}
        self.errors: dict[bytes, ErrorAbi] = {}
        self.events: dict[bytes, EventAbi] = {}
        self.events_by_name: dict[str, EventAbi] = {}
        self.constructor_types: tuple[str, ...] = ()
        for entry in abi:
            kind = entry.get("type")
            inputs = entry.get("inputs", [])
            if kind == "function":
                name = str(entry["name"])
                if name in self.functions:
                    raise ValueError(f"overloaded function {name} is not supported")
                self.functions[name] = FunctionAbi(
                    name=name,
                    selector=keccak(text=signature(name, inputs))[:4],
                    input_types=tuple(abi_type(p) for p in inputs),
                    output_types=tuple(abi_type(p) for p in entry.get("outputs", [])),
                    mutates=entry.get("stateMutability") not in ("view", "pure"),
                )
            elif kind == "error":
                err = ErrorAbi(
                    name=str(entry["name"]),
                    selector=keccak(text=signature(str(entry["name"]), inputs))[:4],
                    input_types=tuple(abi_type(p) for p in inputs),
                    input_names=tuple(str(p.get("name", "")) for p in inputs),
                )
                self.errors[err.selector] = err
            elif kind == "event":
                ev = EventAbi(
                    name=str(entry["name"]),
                    topic0=keccak(text=signature(str(entry["name"]), inputs)),
                    names=tuple(str(p["name"]) for p in inputs),
                    types=tuple(abi_type(p) for p in inputs),
                    indexed=tuple(bool(p.get("indexed")) for p in inputs),
                )
                self.events[ev.topic0] = ev
                self.events_by_name[ev.name] = ev
            elif kind == "constructor":
                self.constructor_types = tuple(abi_type(p) for p in inputs)

    def function(self, name: str) -> FunctionAbi:
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(f"the contract ABI has no function {name!r}") from None

    def encode_call(self, name: str, args: Sequence[Any]) -> bytes:
        fn = self.function(name)
        return fn.selector + abi_encode(list(fn.input_types), list(args))

    def decode_output(self, name: str, data: bytes) -> tuple[Any, ...]:
        fn = self.function(name)
        values = abi_decode(list(fn.output_types), data)
        return tuple(normalize(v, t) for v, t in zip(values, fn.output_types, strict=True))

    def encode_constructor(self, args: Sequence[Any]) -> bytes:
        return abi_encode(list(self.constructor_types), list(args))

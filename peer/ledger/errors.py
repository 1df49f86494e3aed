"""One Python exception per custom error of the Federation contract.

A refused call reverts with a 4-byte selector and ABI-encoded arguments; the
client maps the selector (computed from the contract's own ABI, so the two can
never drift apart) to the class of the same name below, decodes the arguments
into ``exc.args_by_name``, and raises it with a message that says what was
refused and what to do.  Revert data with an unknown selector becomes a plain
:class:`ContractRevert` carrying the raw hex.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from fedchain.errors import LedgerError
from peer.ledger.abi import ContractAbi, normalize


class ContractRevert(LedgerError):
    """The contract refused a call; subclasses name the exact reason."""

    hint: ClassVar[str] = "the contract refused the call"

    def __init__(
        self,
        context: str,
        *,
        error_name: str | None = None,
        args_by_name: dict[str, Any] | None = None,
        data: bytes = b"",
    ) -> None:
        self.context = context
        self.error_name = error_name
        self.args_by_name = dict(args_by_name or {})
        self.data = data
        if error_name is None:
            text = f"{context} reverted with unrecognised data 0x{data.hex()}"
        else:
            shown = ", ".join(f"{k}={_show(v)}" for k, v in self.args_by_name.items())
            text = f"{context} refused: {error_name}({shown}): {self.hint}"
        super().__init__(text)


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def call_context(fn: str, args: Sequence[Any], sender: str) -> str:
    """How a refused call is named in its error: ``fn(arg, ...) from sender``."""
    return f"{fn}({', '.join(_show(a) for a in args)}) from {sender}"


class TransactionFailed(LedgerError):
    """A transaction failed without revert data (out of gas, or state moved before replay)."""


class ReceiptTimeout(LedgerError, TimeoutError):
    """A sent transaction was not mined in time."""


# -- Solidity's built-in revert forms -------------------------------------------------------


class RevertReason(ContractRevert):
    hint = "the contract reverted with a reason string"


class Panic(ContractRevert):
    hint = "the contract hit an internal error (Solidity panic); report it with the call"


# -- the Federation contract's custom errors --------------------------------------------------


class NotMember(ContractRevert):
    hint = "only current members may do this; check the key in use, or have the members admit it"


class NotEligible(ContractRevert):
    hint = "the member was admitted after this round opened; it takes part from the next round"


class UnknownTask(ContractRevert):
    hint = "no task has this id; check the task id and the contract address"


class TaskFinished(ContractRevert):
    hint = "the task has finalized all its rounds; nothing more can be submitted"


class WrongRound(ContractRevert):
    hint = "the call names another round than the task's open one; re-read the task and retry"


class RoundNotCollecting(ContractRevert):
    hint = "the round's update set is already closed"


class SubmissionDeadlinePassed(ContractRevert):
    hint = "the round's submission deadline has passed; submit in the next round"


class AlreadySubmitted(ContractRevert):
    hint = "this member already submitted an update in this round"


class ZeroSamples(ContractRevert):
    hint = "an update must report a positive number of training samples"


class InvalidCid(ContractRevert):
    hint = "expected a binary CIDv1 (raw or dag-pb codec) naming a sha2-256 digest (36 bytes)"


class ZeroScoresDigest(ContractRevert):
    hint = "the contribution scores root must not be zero"


class UpdatesNotClosed(ContractRevert):
    hint = (
        "the update set is still open; wait until every eligible member submitted, or close "
        "it after the deadline"
    )


class DeadlineNotPassed(ContractRevert):
    hint = "the deadline this step waits for has not passed yet"


class QuorumNotReached(ContractRevert):
    hint = "fewer updates than the quorum; wait, or fail the round once its deadline passed"


class QuorumAlreadyReached(ContractRevert):
    hint = "the round has enough updates to continue; close the update set instead of failing it"


class AlreadyAttested(ContractRevert):
    hint = "this member already attested an aggregate for this round"


class AttestDeadlinePassed(ContractRevert):
    hint = "the round's attestation deadline has passed; it can only be failed now"


class RoundAlreadyFinalized(ContractRevert):
    hint = "the round is finalized and can no longer change"


class RoundNotFinalized(ContractRevert):
    hint = "the round has not finalized (or failed); wait for finalization"


class NotAttested(ContractRevert):
    hint = "the member did not attest this round"


class NoDissent(ContractRevert):
    hint = "the member attested the pair the round finalized with"


class DissentAlreadyReported(ContractRevert):
    hint = "this dissent is already on record"


class DissentWindowClosed(ContractRevert):
    hint = "storage no longer holds that attestation; report dissent right after finalization"


class InvalidProof(ContractRevert):
    hint = "the score and proof do not match the round's agreed scores root"


class AlreadyClaimed(ContractRevert):
    hint = "this member already claimed its contribution for this round"


class AlreadyApproved(ContractRevert):
    hint = "this member already approved the proposal"


class UnknownProposal(ContractRevert):
    hint = "no proposal has this id"


class ProposalClosed(ContractRevert):
    hint = "the proposal has already executed or expired"


class AlreadyMember(ContractRevert):
    hint = "the account is already a member"


class PeerIdTaken(ContractRevert):
    hint = "another member is registered under this libp2p peer ID"


class InvalidConfig(ContractRevert):
    hint = "an argument is out of range (see the reason)"


class EpsilonDecreased(ContractRevert):
    hint = (
        "the epsilon committed with an update is below this member's previous figure in the "
        "task; differential-privacy spending only grows"
    )


class SamplesAboveCap(ContractRevert):
    hint = (
        "the update claims more training samples than the task's cap (task maxSamples); "
        "report at most the cap"
    )


class QuorumNotMajority(ContractRevert):
    hint = (
        "the quorum must be more than half of the current members (2 x quorum > members), so "
        "that no minority can finalize a round; raise it"
    )


class ZeroEncryptionKey(ContractRevert):
    hint = (
        "this federation has an audit key, so every member needs an X25519 encryption key: "
        "pass the public key `fedchain init` printed (keys.encryption_keystore)"
    )


class EncryptionKeyTaken(ContractRevert):
    hint = "a member already holds this encryption key; each member needs its own (fedchain init)"


class NotAFederation(LedgerError):
    """The address holds no contract, or one that does not answer like a Federation."""


CUSTOM_ERRORS: dict[str, type[ContractRevert]] = {
    cls.__name__: cls
    for cls in (
        NotMember,
        NotEligible,
        UnknownTask,
        TaskFinished,
        WrongRound,
        RoundNotCollecting,
        SubmissionDeadlinePassed,
        AlreadySubmitted,
        ZeroSamples,
        InvalidCid,
        ZeroScoresDigest,
        UpdatesNotClosed,
        DeadlineNotPassed,
        QuorumNotReached,
        QuorumAlreadyReached,
        AlreadyAttested,
        AttestDeadlinePassed,
        RoundAlreadyFinalized,
        RoundNotFinalized,
        NotAttested,
        NoDissent,
        DissentAlreadyReported,
        DissentWindowClosed,
        InvalidProof,
        AlreadyClaimed,
        AlreadyApproved,
        UnknownProposal,
        ProposalClosed,
        AlreadyMember,
        PeerIdTaken,
        InvalidConfig,
        SamplesAboveCap,
        QuorumNotMajority,
        EpsilonDecreased,
        ZeroEncryptionKey,
        EncryptionKeyTaken,
    )
}
"""Contract error name -> Python class (same name)."""

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


def decode_revert(abi: ContractAbi, data: bytes, context: str) -> ContractRevert:
    """The exception for revert ``data`` of a call described by ``context``."""
    selector, body = data[:4], data[4:]
    try:
        if selector == _ERROR_STRING:
            (reason,) = abi_decode(["string"], body)
            return RevertReason(
                context, error_name="Error", args_by_name={"reason": reason}, data=data
            )
        if selector == _PANIC:
            (code,) = abi_decode(["uint256"], body)
            return Panic(context, error_name="Panic", args_by_name={"code": hex(code)}, data=data)
        err = abi.errors.get(selector)
        if err is None:
            return ContractRevert(context, data=data)
        values = abi_decode(list(err.input_types), body)
    except DecodingError:
        return ContractRevert(context, data=data)
    args = {
        name or f"arg{i}": normalize(v, t)
        for i, (name, v, t) in enumerate(zip(err.input_names, values, err.input_types, strict=True))
    }
    cls = CUSTOM_ERRORS.get(err.name, ContractRevert)
    return cls(context, error_name=err.name, args_by_name=args, data=data)

"""Randomized rounds on every ledger backend, checked step by step against a model of the rules.

Hypothesis drives members (and an outsider) through random submits, closes,
attestations (agreeing or not), failures, claims and jumps of block time.  For
each step the model predicts success or the exact refusal; after each step the
chain must agree with the model on the open round, on every finalized round
(which must never change) and on every member's credit (which only grows, and
only from finalized rounds).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from consensus.merkle import MerkleTree
from consensus.scoring import Score, scores_tree
from peer.ledger import errors as E
from peer.ledger.types import RoundStatus, TxResult
from tests.peer.ledger.conftest import Backend, cid_of

HOUR = 3600
JUMP = HOUR + 600
"""A time jump lands well inside the next window (deadlines are 1 h and 2 h after opening)."""
QUORUM = 2
MAX_SAMPLES = 30
"""The task's cap: the submit rule may claim exactly it; everyone_submits first tries one more."""
WHO = st.sampled_from([0, 1, 2, 0, 1, 2, 3])
"""Members 0..2 and, less often, the outsider (3)."""
MEMBERS = 3
OUTCOMES: Counter[str] = Counter()
"""What the run did (rule + "ok" or error name), to check the exploration reached every path."""


@dataclass
class RoundModel:
    number: int
    opened_at: int
    submitted: dict[int, int] = field(default_factory=dict)
    """member index -> numSamples, in submission order."""
    closed: bool = False
    votes: dict[str, int] = field(default_factory=dict)
    attested: set[int] = field(default_factory=set)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, chain: Backend) -> None:
        super().__init__()
        self.chain = chain
        accounts = [Account.from_key(k) for k in chain.dev_private_keys(MEMBERS + 2)]
        members = accounts[1 : 1 + MEMBERS]
        dep = chain.deploy(
            accounts[0],
            [m.address for m in members],
            [f"12D3KooWState{i}" for i in range(MEMBERS)],
            5001,
        )
        self.clients = [chain.client(dep.address, a) for a in members] + [
            chain.client(dep.address, accounts[-1])
        ]
        self.reader = dep
        self.task = self.clients[0].create_task(
            cid_of(b"spec"), cid_of(b"m0"), QUORUM, HOUR, HOUR, 1000, MAX_SAMPLES
        )
        assert self.clients[0].last_result is not None
        self.round = RoundModel(1, self._block_time(self.clients[0].last_result))
        self.finalized: dict[int, tuple[bytes, bytes, MerkleTree, dict[int, int]]] = {}
        self.failed: set[int] = set()
        self.claimed: set[tuple[int, int]] = set()
        self.credit = [0] * MEMBERS
        self.last_attest: dict[int, int] = {}
        self.writes = 0
        """Successful writes so far: the ledger can only change with one."""
        self.checked: dict[str, int] = {}

    # -- helpers ---------------------------------------------------------------------------

    def _block_time(self, result: TxResult | None = None) -> int:
        return self.chain.block_time(result.block_number if result else None)

    def _now(self) -> int:
        return self._block_time()

    def _submit_deadline(self) -> int:
        return self.round.opened_at + HOUR

    def _attest_deadline(self) -> int:
        return self.round.opened_at + 2 * HOUR

    def _need(self) -> int:
        """The contract's rule: a strict majority of the eligible, at least the quorum."""
        return min(max(QUORUM, MEMBERS // 2 + 1), MEMBERS)

    def _expect(
        self, label: str, expected: type[E.ContractRevert] | None, action: object
    ) -> TxResult | None:
        assert callable(action)
        if expected is None:
            result = action()
            assert isinstance(result, TxResult)
            OUTCOMES[f"{label}:ok"] += 1
            self.writes += 1
            return result
        with pytest.raises(E.ContractRevert) as exc:
            action()
        assert type(exc.value) is expected, f"expected {expected.__name__}, got {exc.value}"
        OUTCOMES[expected.__name__] += 1
        return None

    def _tree(self, submitted: dict[int, int]) -> MerkleTree:
        scores = [Score(self.clients[i].account.address, n) for i, n in submitted.items()]
        return scores_tree(self.task, self.round.number, scores)

    def _open_next(self, result: TxResult) -> None:
        self.round = RoundModel(self.round.number + 1, self._block_time(result))

    # -- rules ---------------------------------------------------------------------------------

    @rule(who=WHO, offset=st.sampled_from([0, 0, 0, 1]), samples=st.sampled_from([0, 1, 7, 30]))
    def submit(self, who: int, offset: int, samples: int) -> None:
        r, given = self.round, self.round.number + offset
        expected: type[E.ContractRevert] | None = None
        if who == MEMBERS:
            expected = E.NotMember
        elif given != r.number:
            expected = E.WrongRound
        elif r.closed:
            expected = E.RoundNotCollecting
        elif self._now() > self._submit_deadline():
            expected = E.SubmissionDeadlinePassed
        elif who in r.submitted:
            expected = E.AlreadySubmitted
        elif samples == 0:
            expected = E.ZeroSamples
        elif samples > MAX_SAMPLES:
            expected = E.SamplesAboveCap
        cid = cid_of(f"u{self.task}/{given}/{who}".encode())
        if self._expect(
            "submit",
            expected,
            lambda: self.clients[who].submit_update(self.task, given, cid, samples),
        ):
            r.submitted[who] = samples
            r.closed = len(r.submitted) == MEMBERS

    @rule(who=WHO)
    def close(self, who: int) -> None:
        r = self.round
        expected: type[E.ContractRevert] | None = None
        if who == MEMBERS:
            expected = E.NotMember
        elif r.closed:
            expected = E.RoundNotCollecting
        elif self._now() <= self._submit_deadline():
            expected = E.DeadlineNotPassed
        elif len(r.submitted) < self._need():
            expected = E.QuorumNotReached
        if self._expect(
            "close", expected, lambda: self.clients[who].close_updates(self.task, r.number)
        ):
            r.closed = True

    @rule(who=WHO, variant=st.sampled_from(["", "", "", "other"]))
    def attest(self, who: int, variant: str) -> None:
        r = self.round
        agg = cid_of(f"agg{self.task}/{r.number}{variant}".encode())
        tree = self._tree(r.submitted) if r.submitted else None
        root = tree.root if tree is not None else b"\x01" * 32
        expected: type[E.ContractRevert] | None = None
        if who == MEMBERS:
            expected = E.NotMember
        elif not r.closed:
            expected = E.UpdatesNotClosed
        elif self._now() > self._attest_deadline():
            expected = E.AttestDeadlinePassed
        elif who in r.attested:
            expected = E.AlreadyAttested
        result = self._expect(
            "attest",
            expected,
            lambda: self.clients[who].attest_aggregate(self.task, r.number, agg, root),
        )
        if result is None:
            return
        r.attested.add(who)
        self.last_attest[who] = r.number
        key = agg.hex() + root.hex()
        r.votes[key] = r.votes.get(key, 0) + 1
        if r.votes[key] >= self._need():
            assert tree is not None
            self.finalized[r.number] = (agg[4:], root, tree, dict(r.submitted))
            OUTCOMES["finalized"] += 1
            self._open_next(result)

    @rule(who=WHO)
    def fail(self, who: int) -> None:
        r, now = self.round, self._now()
        expected: type[E.ContractRevert] | None = None
        if who == MEMBERS:
            expected = E.NotMember
        elif now <= self._submit_deadline():
            expected = E.DeadlineNotPassed
        elif now <= self._attest_deadline():
            if r.closed:
                expected = E.DeadlineNotPassed
            elif len(r.submitted) >= self._need():
                expected = E.QuorumAlreadyReached
        result = self._expect(
            "fail", expected, lambda: self.clients[who].fail_round(self.task, r.number)
        )
        if result is not None:
            self.failed.add(r.number)
            self._open_next(result)

    @rule(who=WHO, pick=st.integers(0, 10), wrong_score=st.booleans())
    def claim(self, who: int, pick: int, wrong_score: bool) -> None:
        rounds = sorted(self.finalized) + sorted(self.failed) + [self.round.number]
        target = rounds[pick % len(rounds)]
        expected: type[E.ContractRevert] | None = None
        score, proof = 1, [b"\x00" * 32]
        if target in self.finalized:
            _, _, tree, submitted = self.finalized[target]
            if who in submitted:
                index = list(submitted).index(who)
                score, proof = submitted[who] + (1 if wrong_score else 0), tree.proof(index)
        if who == MEMBERS:
            expected = E.NotMember
        elif target not in self.finalized:
            expected = E.RoundNotFinalized
        elif (who, target) in self.claimed:
            expected = E.AlreadyClaimed
        elif who not in self.finalized[target][3] or wrong_score:
            expected = E.InvalidProof
        if self._expect(
            "claim",
            expected,
            lambda: self.clients[who].claim_contribution(self.task, target, score, proof),
        ):
            self.claimed.add((who, target))
            self.credit[who] += score

    @rule()
    def everyone_submits(self) -> None:
        for who in range(MEMBERS):
            self.submit(who, 0, MAX_SAMPLES + 1)  # refused: changes nothing the model tracks
            self.submit(who, 0, 10 + who)

    @rule(dissenter=st.integers(-1, MEMBERS - 1))
    def everyone_attests(self, dissenter: int) -> None:
        for who in range(MEMBERS):
            if self.round.closed:
                self.attest(who, "other" if who == dissenter else "")

    @rule(late=st.integers(0, MEMBERS - 1), closer=WHO)
    def deadline_passes_on_a_partial_set(self, late: int, closer: int) -> None:
        for who in range(MEMBERS):
            if who != late:
                self.submit(who, 0, 5 + who)
        self.advance_time()
        self.submit(late, 0, 5)
        self.close(closer)

    @rule()
    def advance_time(self) -> None:
        self.chain.time_advance(JUMP)

    # -- invariants ------------------------------------------------------------------------------
    # A refused write changes nothing, so each invariant is checked again only after a successful
    # one (most steps are refusals; this halves the real chains' time), and all at teardown.

    def _changed_since(self, check: str) -> bool:
        if self.checked.get(check) == self.writes:
            return False
        self.checked[check] = self.writes
        return True

    def teardown(self) -> None:
        self.checked.clear()
        self.open_round_matches()
        self.finalized_rounds_never_change()
        self.credit_only_from_claims()

    @invariant()
    def open_round_matches(self) -> None:
        if not self._changed_since("open round"):
            return
        t = self.reader.task(self.task)
        assert t.current_round == self.round.number
        assert t.finalized_rounds == len(self.finalized)
        info = self.reader.round_info(self.task, self.round.number)
        assert info.status is (RoundStatus.CLOSED if self.round.closed else RoundStatus.COLLECTING)
        assert info.submissions == len(self.round.submitted) <= info.eligible
        assert info.need == self._need()
        assert info.submit_deadline == self._submit_deadline()

    @invariant()
    def finalized_rounds_never_change(self) -> None:
        if not self._changed_since("ended rounds"):
            return
        for number, (agg, root, _, submitted) in self.finalized.items():
            info = self.reader.round_info(self.task, number)
            assert info.status is RoundStatus.FINALIZED
            assert (info.aggregate_digest, info.scores_digest) == (agg, root)
            assert info.submissions == len(submitted)
        for number in self.failed:
            assert self.reader.round_info(self.task, number).status is RoundStatus.FAILED

    @invariant()
    def credit_only_from_claims(self) -> None:
        if not self._changed_since("credit"):
            return
        for i in range(MEMBERS):
            addr = self.clients[i].account.address
            assert (
                self.reader.credit_of(addr) == self.credit[i] == self.reader.contribution_of(addr)
            )
        assert self.reader.credit_of(self.clients[MEMBERS].account.address) == 0


def test_random_rounds_follow_the_rules(chain: Backend) -> None:
    OUTCOMES.clear()
    # Derandomized Hypothesis seeds the exploration from this class's source: keep it as is
    # (the name ``env`` included), or the fixed exploration changes and may miss a path.
    env = chain

    class OnThisChain(LedgerMachine):
        def __init__(self) -> None:
            super().__init__(env)

    run_state_machine_as_test(
        OnThisChain,
        settings=settings(
            max_examples=12,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            derandomize=True,
        ),
    )
    # The exploration is fixed (derandomized); make sure it keeps reaching every kind of step.
    for outcome in (
        "submit:ok",
        "close:ok",
        "attest:ok",
        "finalized",
        "fail:ok",
        "claim:ok",
        "NotMember",
        "AlreadySubmitted",
        "SubmissionDeadlinePassed",
        "UpdatesNotClosed",
        "AlreadyAttested",
        "RoundNotFinalized",
        "InvalidProof",
        "SamplesAboveCap",
    ):
        assert OUTCOMES[outcome] > 0, f"no {outcome} step in {dict(OUTCOMES)}"

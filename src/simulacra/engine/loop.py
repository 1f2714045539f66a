"""The one retry loop: every task (records, texts, extraction, LangChain structured output)
runs through `run`.

A *task* turns tries into requests and judges what comes back:

    requests(tries)                 -> one Request per Try (a batch may share a prompt)
    judge(try, request, completion) -> Verdict: a value, or a rejection with its reason

The loop owns everything else, the same for every task: per-(index, attempt) seeds, so a
rerun or a resumed run makes the same results; up to `max_attempts` tries per index with the
last rejection fed back to the next; batches sized to the backend; one `RunStats`; and one
ledger row per settled index (every try with its seed, tokens, seconds, rejection and raw
text). Results are yielded as soon as their batch is judged, failures too (`ok=False`), so a
caller can write, count or report each at once.

On a backend that batches continuously (`Capabilities.spares`), a run's last batch also
decodes a few spare tries, and a finished spare stands in for a rejected index: its retry
would otherwise decode nearly alone after the batch has drained.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from simulacra.backends.base import Backend, Completion, Request
from simulacra.engine import calls


def derive_seed(seed: int, index: int | str, attempt: int) -> int:
    """A stable per-(index, attempt) seed, so a rerun with the same seed makes the same results."""
    digest = hashlib.blake2b(f"{seed}:{index}:{attempt}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class Try:
    """One attempt at one index: what a task builds a request from."""

    index: int
    attempt: int          # 1-based
    seed: int
    feedback: str = ""    # why the previous attempt was rejected ("" on the first)
    spare: bool = False   # a spare: it may stand in for any rejected index (see run)


@dataclass
class Verdict:
    """A task's judgement of one completion."""

    value: Any = None     # the result, when accepted
    data: Any = None      # its JSON-ready form (sinks, ledger); defaults to `value`
    reason: str = ""      # why it was rejected ("kind: detail"); "" means accepted
    fallback: Any = None  # handed back if every attempt is rejected (a text missing a value)
    note: dict[str, Any] = field(default_factory=dict)  # extra ledger fields for this try

    @property
    def ok(self) -> bool:
        return not self.reason


class Task(Protocol):
    def requests(self, tries: list[Try]) -> list[Request]: ...

    def judge(self, attempt: Try, request: Request, completion: Completion) -> Verdict: ...


@dataclass
class Outcome:
    """One settled index: its result (or, when `ok` is False, the fallback and the reason)."""

    index: int
    value: Any
    data: Any
    attempts: int
    seed: int
    ok: bool = True
    reason: str = ""
    last_output: str = ""  # a failure's last raw reply (what the model wrote, for errors)

    @property
    def record(self) -> Any:   # the name generation code reads best with
        return self.value


@dataclass
class RunStats:
    """What a run did, the same shape for every task; the CLI prints it as the summary line."""

    requested: int = 0
    valid: int = 0
    attempts: int = 0
    rejected: Counter = field(default_factory=Counter)
    failed: list[tuple[int, str]] = field(default_factory=list)
    last_failed_output: str = ""  # the raw reply of the last try of the last failed index
    tokens_in: int = 0
    tokens_out: int = 0
    routes: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    gate: Any = None  # a generation run's RecordGate: closest leak distance, kept records
    drafted: int = 0  # records drafted to choose examples from (engine/drafts.py)
    diversity: float | None = None  # the diversity steer's setting, when the decoder took it
    spares_unused: int = 0  # spare tries decoded and not needed (engine/loop.py)

    @property
    def closest_leak(self) -> float:
        """Highest similarity (0-100) of any kept record to a few-shot example or private row."""
        return self.gate.closest_leak if self.gate is not None else 0.0

    @property
    def records_per_second(self) -> float:
        return self.valid / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested, "valid": self.valid, "failed": len(self.failed),
            "attempts": self.attempts, "rejected": dict(self.rejected),
            "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.records_per_second, 3),
            "routes": dict(self.routes),
            "closest_leak_similarity": round(self.closest_leak, 1),
            "drafted_for_examples": self.drafted, "diversity_steer": self.diversity,
            "spares_unused": self.spares_unused,
        }


Ledger = Callable[[dict[str, Any]], None]


def run(backend: Backend, task: Task, indices: Iterable[int], *, seed: int,
        max_attempts: int, stats: RunStats | None = None, ledger: Ledger | None = None,
        done: Iterable[int] = ()) -> Iterator[Outcome]:
    """Settle every index (except those `done` by an earlier, resumed run): yield an Outcome
    for each, accepted or failed after `max_attempts` tries. See the module docstring."""
    backend = calls.wrap(backend)   # a remote backend: in parallel, retried, cached
    stats = stats if stats is not None else RunStats()
    skip = set(done)
    pending: deque[Try] = deque(Try(i, 1, derive_seed(seed, i, 1)) for i in indices
                                if i not in skip)
    stats.requested += len(pending)
    tries: dict[int, list[dict[str, Any]]] = {}
    batch_size = max(1, backend.capabilities.batch)
    use_spares = getattr(backend.capabilities, "spares", False) and \
        getattr(task, "spares", False) and max_attempts > 1
    judged = rejected = 0   # this run's tries so far: how many spares a last batch gets

    def judge(attempt: Try, request: Request, completion: Completion,
              stand_in: Try | None = None) -> Verdict:
        """Judge a try, count it and write it to its index's ledger tries. A spare is judged
        `stand_in` for a rejected index's next try, and counts as that try."""
        nonlocal judged, rejected
        index = stand_in.index if stand_in is not None else attempt.index
        verdict = task.judge(attempt, request, completion)
        _count(stats, backend, completion)
        judged += 1
        if ledger is not None:
            tries.setdefault(index, []).append({
                "attempt": attempt.attempt if stand_in is None else stand_in.attempt,
                "seed": attempt.seed, **verdict.note,
                **({"spare": True} if stand_in is not None else {}),
                "route": completion.route, "tokens": completion.tokens_out,
                "seconds": round(completion.seconds, 3),
                "rejected": verdict.reason or None,
                "text": completion.text if verdict.reason else None})
        if verdict.ok:
            stats.valid += 1
            if ledger is not None:
                ledger(ledger_row(index, "ok", tries.pop(index, [])))
        else:
            rejected += 1
            stats.rejected[verdict.reason.split(":", 1)[0]] += 1
        return verdict

    try:
        while pending:
            batch = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
            # The last batch gets spares: a rejected record's retry would otherwise decode
            # nearly alone once the batch has drained, after its own prompt
            spares = spare_tries(seed, batch, max(SPARE_SHARE, rejected / max(1, judged))) \
                if use_spares and not pending else []
            tried = batch + spares
            requests = task.requests(tried)
            unsettled = len(batch)   # the batch's own tries not judged yet
            spares_running, spares_judged = len(spares), 0
            retries: deque[Try] = deque()   # rejected indices' next tries, before a spare
            held: deque[tuple[Try, Request, Completion]] = deque()  # spares not needed yet
            stream = answers(backend, requests)
            try:
                for position, completion in stream:
                    attempt, request = tried[position], requests[position]
                    if position >= len(batch):
                        spares_running -= 1
                        held.append((attempt, request, completion))
                    else:
                        unsettled -= 1
                        verdict = judge(attempt, request, completion)
                        if verdict.ok:
                            yield _accepted(attempt, verdict)
                        elif attempt.attempt < max_attempts:
                            nxt = attempt.attempt + 1
                            retries.append(Try(attempt.index, nxt, derive_seed(
                                seed, attempt.index, nxt), verdict.reason))
                        else:
                            yield _failure(stats, attempt, verdict, completion, tries, ledger)
                    while retries and held:   # a finished spare stands in for a retry
                        spare, spare_request, spare_completion = held.popleft()
                        spares_judged += 1
                        verdict = judge(spare, spare_request, spare_completion, retries[0])
                        if verdict.ok:
                            yield _accepted(spare, verdict, retries.popleft())
                    if spares_running and not unsettled and not retries:
                        break   # only spares still decoding, and none is needed
            finally:
                stream.close()
            # spares not needed, decoded or dropped while decoding (tokens and attempts count
            # judged tries only, so tokens per try stay a record's)
            stats.spares_unused += len(spares) - spares_judged
            forget = getattr(task, "forget", None)
            for spare in spares if forget is not None else ():
                forget(spare)
            for retry in retries:
                pending.appendleft(retry)
    finally:
        stats.seconds = time.perf_counter() - stats.started


def _accepted(attempt: Try, verdict: Verdict, stand_in: Try | None = None) -> Outcome:
    """An accepted try's outcome; a spare's is the index it stood in for, with its own seed."""
    data = verdict.data if verdict.data is not None else verdict.value
    if stand_in is None:
        return Outcome(attempt.index, verdict.value, data, attempt.attempt, attempt.seed)
    return Outcome(stand_in.index, verdict.value, data, stand_in.attempt, attempt.seed)


def _failure(stats: RunStats, attempt: Try, verdict: Verdict, completion: Completion,
             tries: dict[int, list[dict[str, Any]]], ledger: Ledger | None) -> Outcome:
    """An index whose last try was rejected: counted, written to the ledger, handed back
    with the task's fallback."""
    stats.failed.append((attempt.index, verdict.reason))
    stats.last_failed_output = completion.text
    if ledger is not None:
        ledger(ledger_row(attempt.index, f"failed: {verdict.reason.split(':', 1)[0]}",
                          tries.pop(attempt.index, [])))
    return Outcome(attempt.index, verdict.fallback, verdict.fallback, attempt.attempt,
                   attempt.seed, ok=False, reason=verdict.reason, last_output=completion.text)


SPARE_SHARE = 0.02   # spares per try of a last batch, until the run has rejections of its own


def spare_tries(seed: int, batch: list[Try], share: float) -> list[Try]:
    """Tries a last batch decodes beside its own, `share` of them (at least one): each can
    stand in for a rejected record's retry. They have indices of their own (negative) and
    seeds from the batch's first try, so a rerun makes the same ones."""
    first = batch[0]
    count = min(len(batch), math.ceil(len(batch) * share))
    return [Try(-1 - k, 1, derive_seed(seed, f"spare {first.index}.{first.attempt}", k + 1),
                spare=True) for k in range(count)]


def answers(backend: Backend, requests: list[Request]) -> Iterator[tuple[int, Completion]]:
    """(position, completion) as each is made, where the backend can tell (`stream`), so a
    result is judged, written and counted at once rather than with its whole batch."""
    stream = getattr(backend, "stream", None)
    if stream is not None:
        yield from stream(requests)
        return
    completions = backend.complete(requests)
    if len(completions) != len(requests):
        raise ValueError(f"{backend.name} answered {len(completions)} of {len(requests)} requests")
    yield from enumerate(completions)


def _count(stats: RunStats, backend: Backend, completion: Completion) -> None:
    stats.attempts += 1
    stats.tokens_in += completion.tokens_in
    stats.tokens_out += completion.tokens_out
    stats.routes[completion.route or backend.name] += 1


def ledger_row(index: int, outcome: str, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """One settled index: the last try's seed (and sampled values), totals, and every try."""
    last = attempts[-1] if attempts else {}
    return {"index": index, "outcome": outcome, "attempts": len(attempts),
            "seed": last.get("seed"), "sampled": last.get("sampled") or {},
            "flags": last.get("flags") or [],
            **({"context": last["context"]} if "context" in last else {}),
            "tokens": sum(a["tokens"] for a in attempts),
            "seconds": round(sum(a["seconds"] for a in attempts), 3),
            "tries": attempts}


def failure_reason(completion: Completion) -> str:
    """The rejection every task shares for a completion that did not finish normally."""
    if completion.finish_reason == "length":
        return "truncated: the reply hit the token budget before it closed"
    if completion.finish_reason == "error":
        return f"backend: {completion.text}"
    if completion.finish_reason == "repetition":
        return "repetition: the reply looped (a token cycle repeated), so it was stopped"
    return ""

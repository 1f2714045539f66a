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
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from simulacra.backends.base import Backend, Completion, Request
from simulacra.engine import calls


def derive_seed(seed: int, index: int, attempt: int) -> int:
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
    try:
        while pending:
            batch = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
            requests = task.requests(batch)
            for position, completion in answers(backend, requests):
                attempt, request = batch[position], requests[position]
                verdict = task.judge(attempt, request, completion)
                _count(stats, backend, completion)
                if ledger is not None:
                    tries.setdefault(attempt.index, []).append({
                        "attempt": attempt.attempt, "seed": attempt.seed, **verdict.note,
                        "route": completion.route, "tokens": completion.tokens_out,
                        "seconds": round(completion.seconds, 3),
                        "rejected": verdict.reason or None,
                        "text": completion.text if verdict.reason else None})
                if verdict.ok:
                    stats.valid += 1
                    if ledger is not None:
                        ledger(ledger_row(attempt.index, "ok", tries.pop(attempt.index, [])))
                    data = verdict.data if verdict.data is not None else verdict.value
                    yield Outcome(attempt.index, verdict.value, data, attempt.attempt,
                                  attempt.seed)
                    continue
                kind = verdict.reason.split(":", 1)[0]
                stats.rejected[kind] += 1
                if attempt.attempt < max_attempts:
                    nxt = attempt.attempt + 1
                    pending.appendleft(Try(attempt.index, nxt, derive_seed(seed, attempt.index, nxt),
                                           verdict.reason))
                    continue
                stats.failed.append((attempt.index, verdict.reason))
                stats.last_failed_output = completion.text
                if ledger is not None:
                    ledger(ledger_row(attempt.index, f"failed: {kind}",
                                      tries.pop(attempt.index, [])))
                yield Outcome(attempt.index, verdict.fallback, verdict.fallback, attempt.attempt,
                              attempt.seed, ok=False, reason=verdict.reason,
                              last_output=completion.text)
    finally:
        stats.seconds = time.perf_counter() - stats.started


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

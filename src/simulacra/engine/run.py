"""Records from a plan: the generation task the engine loop (engine/loop.py) runs.

A try is rejected when the reply was cut by the token budget, is not JSON, fails the schema
(types, bounds, pydantic validators), holds an implausible value (checks/plausible.py) or
duplicates a record already made (or copies an example or a private row); the reason is
counted and, for chat backends, fed back on the next try (instructor's reask). Records are
yielded as soon as they are valid, so sinks can write them at once.

On a constrained decoder the run also steers each record away from the values it has already
made and keeps numeric orderings while decoding (engine/diversity.py); an endpoint's prompt
names the values used most so far instead, and pushes down the first tokens of the examples'
values where the endpoint takes a logit bias. A plan with a context sampler gives each record its
own context line (plan.with_context).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any

from simulacra.backends.base import Backend, Completion, Request
from simulacra.checks.gate import RecordGate
from simulacra.checks.plausible import PlausibilityGate
from simulacra.engine.diversity import (
    DEFAULT_DIVERSITY,
    UsedValues,
    build_steer,
    free_text_fields,
)
from simulacra.engine.loop import Ledger, Outcome, RunStats, Try, Verdict, failure_reason, run
from simulacra.engine.surface import RowSurface
from simulacra.errors import UsageError
from simulacra.estimate import count_tokens, typical_record
from simulacra.parse import ReplyParseError, parse_reply, parse_value
from simulacra.plan import Plan, with_context
from simulacra.schema import RecordInvalid, Schema
from simulacra.schema.grammar import SPACED, separators_for
from simulacra.schema.model import keyed_values, longest_lists
from simulacra.schema.size import distinct_instances, longest_tokens, shortest_tokens

__all__ = ["Ledger", "Outcome", "RecordTask", "RunStats", "decoding_schema_for", "run_records",
           "token_budgets"]

MAX_REPLY_TOKENS = 4096
# Characters of free text after which a constrained decoder ends a string at its next
# sentence end (Request.end_text_after): names, titles and codes end well before it.
USUAL_TEXT = 64
CONTEXT_SALT = 0xC0_7E_57   # context lines get their own draws, so samplers' values do not shift


def decoding_schema_for(schema: Schema, n: int, examples: Iterable[Any] = ()
                        ) -> dict[str, Any] | bool:
    """The decoding schema for a run of `n` records. Objects are closed while decoding (the
    small model otherwise adds fields of its own), unless that leaves too few distinct records
    to choose `n` from (the model keeps its favourite) and the schema itself leaves them open.
    Unbounded lists are as long as the `examples`' longest (at least MAX_ITEMS).
    A schema that allows fewer than `n` distinct records at all is refused before anything
    runs."""
    lengths = longest_lists(examples)
    decoding = schema.decoding_schema(list_lengths=lengths)
    if distinct_instances(decoding) >= max(2 * n, n + 10):   # room to pick from, not just n
        return decoding
    decoding = schema.decoding_schema(close_objects=False, list_lengths=lengths)
    possible = distinct_instances(decoding)
    if possible < n:
        raise UsageError(f"{schema.name} allows only {possible} distinct record"
                         f"{'s' if possible != 1 else ''}; ask for at most {possible} or "
                         "loosen the schema")
    return decoding


def token_budgets(plan: Plan, grammar: bool, decoding: dict[str, Any] | bool | None = None
                  ) -> tuple[int, int]:
    """(hard limit, where to start closing) for one reply, in tokens.

    The hard limit is the longest record the bounded decoding schema allows (a reply that
    reaches it was looping). A record usually needs far less: a few times the examples' size,
    or twice the schema's shortest complete instance. A constrained decoder gets the whole
    hard limit and is steered to close from the usual size on, so a record the schema allows
    is never cut; an endpoint, which cannot be steered, is cut at the usual size, so a
    looping reply costs little.
    """
    decoding = plan.schema.decoding_schema() if decoding is None else decoding
    longest = min(MAX_REPLY_TOKENS, 16 + longest_tokens(decoding))
    usual = max(64, 3 * count_tokens(typical_record(plan)), 2 * shortest_tokens(decoding) + 32)
    if grammar:
        return longest, min(usual, longest)
    return min(longest, usual), min(usual, longest)


def usual_text_lengths(examples: Iterable[Any]) -> dict[str, int]:
    """Where a record's free text usually ends, by key: the longest string the examples hold
    under each key, and USUAL_TEXT at least (also under "", for any key they lack). A user
    whose examples have three-sentence descriptions gets three-sentence descriptions."""
    usual = {"": USUAL_TEXT}
    for key, value in keyed_values(examples):
        if isinstance(value, str) and key:
            usual[key] = max(usual.get(key, USUAL_TEXT), len(value))
    return usual


ROW_TRIAL = 24              # rows judged before deciding whether to keep writing rows
ROW_MAX_IMPLAUSIBLE = 0.05  # ...and the share of them the plausibility gate may reject


# Tries that share one order of the examples. A batch of the embedded model's is 128 tries,
# and one order for all of them made a whole run of 100 records follow it: the share of
# reviews without a reviewer (one example in three has none) was 0-4% on four seeds of
# twelve and 27-37% on six, as that example came early or late. Groups get orders of their
# own, and the decoder evaluates each group's prompt once (backends/_decode.py): groups of
# 32 gave 4-27% (16: 9-26%), at 0.94x the records/s of one order on MedicalBilling (16:
# 0.87x; 100 records, 3 rounds interleaved in one process).
ORDER_GROUP = 32


class RecordTask:
    """Generation as a task: one prompt per group of a batch's tries (examples rotated by the
    group's first seed, so the group shares it through the KV cache and the next group sees
    another order), sampled fields pinned per record, and every reply judged by schema, rules
    and the gate."""

    def __init__(self, backend: Backend, plan: Plan, n: int, *, temperature: float,
                 prior: Iterable[dict[str, Any]] = (), diversity: float = DEFAULT_DIVERSITY,
                 max_attempts: int | None = None, spares: bool = True) -> None:
        self.plan = plan
        self.max_attempts = max_attempts
        self.temperature = temperature
        self.decoding = decoding_schema_for(plan.schema, n, plan.examples)
        self.budget, self.close_after = token_budgets(plan, backend.capabilities.grammar,
                                                      self.decoding)
        self.plausible = PlausibilityGate(self.decoding, plan.examples) \
            if plan.plausibility else None
        self.gate = RecordGate(plan.rules, examples=plan.examples, private_rows=plan.private_rows,
                               near_threshold=plan.near_threshold)
        # The diversity steer (engine/diversity.py) needs a decoder that takes it token by
        # token; an endpoint ignores it.
        self.steer = build_steer(self.decoding, diversity, examples=plan.examples,
                                 rules=plan.rules) if backend.capabilities.grammar else None
        self._extra = {"steer": self.steer} if self.steer is not None else {}
        self.usual_text = usual_text_lengths(plan.examples)
        free_text = free_text_fields(self.decoding)
        # Asked for rows, a constrained decoder writes a plain record as one: fewer tokens
        # through the model for the same values (engine/surface.py), as long as rows come out
        # plausible. Only with examples to show a row: without one the 270M model writes
        # prose into it.
        self.row = RowSurface.for_schema(self.decoding, free_text) \
            if plan.rows and backend.capabilities.grammar and plan.examples else None
        self.rows_on = self.row is not None
        self.row_tries = self.row_implausible = 0
        # the JSON layout of records and of the prompt's examples (schema/grammar.py)
        self.separators = separators_for(self.decoding, backend.capabilities.grammar)
        # ...so an endpoint's prompt names the values used most instead
        self.used = UsedValues(free_text, plan.examples) \
            if diversity > 0 and not backend.capabilities.grammar else None
        for record in prior:
            self.gate.admit(record)
            if self.steer is not None:
                self.steer.add_record(record)
            if self.used is not None:
                self.used.add(record)
        self._notes: dict[tuple[int, int], dict[str, Any]] = {}
        # A spare try (engine/loop.py) can stand in for any record, unless the plan fixes
        # values by record index (samplers, a context line) or the caller wants none
        self.spares = spares and not plan.samplers and plan.context is None
        # free-text fields' example values (a record that reuses one is flagged in the ledger)
        # (strings only: a field may be text or a list, as mocharc's "spec" is)
        self._example_values = {path[0]: {value for e in plan.examples
                                          if isinstance(value := e.get(path[0]), str)}
                                for path in free_text if len(path) == 1}

    def requests(self, tries: list[Try]) -> list[Request]:
        row = self.row if self.rows_on else None
        separators = SPACED if row is not None else self.separators
        extra = {**self._extra, "row": row.names} if row is not None else self._extra
        note_used = self.used.note() if self.used is not None else ""
        if self.used is not None:
            extra = {**extra, "avoid": self.used.to_avoid()}
        # each ORDER_GROUP tries get their own order of the examples, drawn from the group's
        # first seed; with a context line per record, the batch keeps one order, which the
        # decoder then evaluates once for all of them (the lines make every prompt its own)
        group = ORDER_GROUP if self.plan.context is None else len(tries)
        prompts = [self.plan.prompt(random.Random(tries[start].seed), row=row,
                                    separators=separators) + note_used
                   for start in range(0, len(tries), group)]
        requests = []
        for position, t in enumerate(tries):
            fixed = self.plan.sample(random.Random(t.seed), t.index)
            note: dict[str, Any] = {"sampled": fixed}
            own_prompt = prompts[position // group]
            if self.plan.context is not None:
                note["context"] = str(self.plan.context(random.Random(t.seed ^ CONTEXT_SALT),
                                                        t.index))
                own_prompt = with_context(own_prompt, note["context"])
            self._notes[t.index, t.attempt] = note
            decoding = with_fixed(self.decoding, fixed) if fixed else self.decoding
            # a spare's values count in the steer once it is kept (judge), so one that is
            # not needed does not push the records beside it (they may still differ in float
            # rounding, as any change to a batch makes them: docs/performance.md)
            extra_t = {**extra, "steer_read_only": True} if t.spare and self.steer else extra
            requests.append(Request(
                prompt=own_prompt, json_schema=row.schema(decoding) if row is not None
                else decoding, max_tokens=self.budget, close_after=self.close_after,
                end_text_after=self.usual_text if row is None  # a row's values have no keys
                else {"": max(self.usual_text.values())},
                temperature=retry_temperature(self.temperature, t.attempt, t.feedback),
                seed=t.seed, stop=("\n",), feedback=t.feedback, extra=extra_t,
                separators=separators))
        return requests

    def judge(self, attempt: Try, request: Request, completion: Completion) -> Verdict:
        note = self._notes.pop((attempt.index, attempt.attempt), {"sampled": {}})
        # The gate asks for better values, but a record's last try keeps an implausible one
        # (flagged) rather than fail: on a schema whose field the model can only fill one way
        # (a config key it leaves empty every time), a flagged record beats no record.
        last_try = self.max_attempts is not None and attempt.attempt >= self.max_attempts
        record, reason = self._accept(completion, keep_implausible=last_try)
        if "row" in request.extra:
            self._count_row(reason)
        if reason.startswith("kept "):
            note.setdefault("flags", []).append(reason)
            reason = ""
        if reason:
            return Verdict(reason=reason, note=note)
        dumped = self.plan.schema.dump(record)
        reused = [name for name, values in self._example_values.items()
                  if isinstance(dumped, dict) and isinstance(dumped.get(name), str)
                  and dumped[name] in values]
        if reused:   # kept, but marked in the ledger: values are meant to be new
            note.setdefault("flags", []).extend(f"example value: {name}" for name in reused)
        if self.used is not None:
            self.used.add(dumped)
        if attempt.spare and self.steer is not None:
            self.steer.add_record(dumped)
        return Verdict(value=record, data=dumped, note=note)

    def forget(self, attempt: Try) -> None:
        """A try that will not be judged (a spare that was not needed)."""
        self._notes.pop((attempt.index, attempt.attempt), None)

    def _count_row(self, reason: str) -> None:
        """Rows stop (objects from the next batch on) once more than ROW_MAX_IMPLAUSIBLE of
        the first ROW_TRIAL rows were implausible: without its key beside it, a value of a
        schema like a product review drifts (measured: 29% of review tries implausible as
        rows, 8% as objects), where MedicalBilling's codes and numbers do not (2.3%, 1.9%)."""
        self.row_tries += 1
        self.row_implausible += reason.startswith(("implausible", "kept on the last try"))
        if self.row_tries >= ROW_TRIAL and self.row_implausible > ROW_MAX_IMPLAUSIBLE * \
                self.row_tries:
            self.rows_on = False

    def _accept(self, completion: Completion, keep_implausible: bool = False
                ) -> tuple[Any, str]:
        """(record, "") when kept, (None, reason) when rejected; (record, "kept ...") when a
        last try keeps an implausible value."""
        reason = failure_reason(completion)
        if reason:
            return None, reason
        schema = self.plan.schema
        try:
            if self.row is not None and completion.text.lstrip().startswith("["):
                data = self.row.record(parse_value(completion.text))
            else:
                data = parse_reply(completion.text) if schema.is_object else parse_value(
                    completion.text)
        except ReplyParseError as exc:
            return None, f"parse: {exc}"
        except RecursionError:
            return None, "parse: the reply is nested too deeply to read"
        try:
            record = schema.validate(data)
        except RecordInvalid as exc:
            return None, "invalid: " + "; ".join(exc.errors[:3])
        except RecursionError:   # a recursive schema, nested past what a validator can walk
            return None, "invalid: the record is nested too deeply to validate"
        dumped = schema.dump(record)
        implausible = self.plausible.reason(dumped) if self.plausible is not None and \
            isinstance(dumped, dict) else None
        reason = self.gate.reject_reason(dumped) or (implausible if not keep_implausible else "")
        if reason:
            return None, reason
        self.gate.admit(dumped)
        return record, f"kept on the last try: {implausible}" if implausible else ""


def run_records(backend: Backend, plan: Plan, n: int, *, seed: int = 0,
                temperature: float = 0.8, max_attempts: int = 4,
                stats: RunStats | None = None, ledger: Ledger | None = None,
                done: Iterable[int] = (), prior: Iterable[dict[str, Any]] = (),
                start: int = 0, diversity: float = DEFAULT_DIVERSITY,
                spares: bool = True) -> Iterator[Outcome]:
    """Yield up to `n` valid, distinct records (indices `start` to `start + n - 1`); failures
    are counted in `stats.failed`. A shard of a larger run passes its first index as `start`,
    so its records get the seeds and sequence values they have in the whole run.

    With `ledger`, every requested record gets exactly one ledger row when it is settled: its
    index, sampler values, seeds, attempts (with the rejection reason and raw model text of
    each failed one), outcome, tokens and seconds. Kept records plus failed rows add up to n.

    A resumed run passes the indices already `done` (skipped) and their records as `prior`
    (so nothing new duplicates them); the other indices get the seeds they always had.
    `spares=False` leaves out the spare tries of the last batch (engine/loop.py).
    """
    stats = stats if stats is not None else RunStats()
    task = RecordTask(backend, plan, n, temperature=temperature, prior=prior,
                      diversity=diversity, max_attempts=max_attempts, spares=spares)
    stats.gate = task.gate
    if task.steer is not None and task.steer.fields:
        stats.diversity = diversity
    for outcome in run(backend, task, range(start, start + n), seed=seed,
                       max_attempts=max_attempts, stats=stats, ledger=ledger, done=done):
        if outcome.ok:
            yield outcome


def retry_temperature(temperature: float, attempt: int, feedback: str) -> float:
    """A retry after a duplicate, a copy of an example or an implausible value samples
    hotter: where the model has one strong favourite (an empty name, a placeholder), another
    try at the same temperature mostly makes the same record."""
    if feedback.startswith(("duplicate", "near-duplicate", "leak", "implausible")):
        return min(2.0, temperature + 0.3 * (attempt - 1))
    return temperature


def with_fixed(decoding: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """The decoding schema with sampled fields pinned: the decoder forces their values."""
    properties = dict(decoding["properties"])
    for name, value in fixed.items():
        properties[name] = {"const": value}
    return {**decoding, "properties": properties}

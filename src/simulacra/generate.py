"""`Generator`: records from a schema, a few examples and a sentence of intent.

    gen = Generator(MedicalBilling, examples=EXAMPLES, subject="medical_billing",
                    extra="names must be unusual")
    records = gen.generate(10)         # list of MedicalBilling
    for record in gen.stream(1000):    # one at a time, as they are made
        ...
    gen.write("billing.parquet", 10_000)   # streamed to disk, resumable, with a ledger
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from simulacra.backends.registry import LazyBackend, UsesModel, is_embedded, model_name
from simulacra.checks.rules import parse_rules
from simulacra.engine import Outcome, RunStats, run_records
from simulacra.engine.diversity import DEFAULT_DIVERSITY
from simulacra.engine.run import Ledger
from simulacra.errors import GenerationError, OutputError, UsageError
from simulacra.plan import Plan
from simulacra.samplers import Sampler
from simulacra.schema import Schema, load_schema

AUTO_RULES = "auto"   # `rules=["auto"]`: the rules the examples keep
QUALITY_LIMIT = 100_000  # past this many records the quality summary is skipped (memory)


@dataclass
class WriteReport:
    """What `Generator.write` did: the run's stats, how many records an earlier run of the
    same job had already written, and the quality summary (None past QUALITY_LIMIT)."""

    stats: RunStats
    resumed: int
    quality: Any = None

    @property
    def finished_before(self) -> bool:
        """An earlier run had written every record: nothing was made, no model loaded."""
        return self.stats.requested == 0 and self.resumed > 0


class Generator(UsesModel):
    """Makes valid, distinct records of `schema` with `model` (default: the embedded model).

    Args:
        schema: a pydantic class, a JSON Schema dict, or a spec like "file.py:Class".
        model: a model name ("gemma-270m", "path.gguf", "openai/NAME"), a Backend, or a
            LangChain chat model. None means $SIMULACRA_MODEL or the embedded model.
        examples: few-shot records (dicts or model instances, validated up front) or free-text
            example strings, as in the LangChain tutorial.
        subject, extra: what the records are about, and extra instructions for the prompt.
        temperature: sampling temperature; seed: makes a run repeatable (random if None).
        max_attempts: tries per record before it counts as failed.
        samplers: field -> Sampler (simulacra.samplers); sampled values are forced while decoding.
        rules: cross-field rules such as "insurance_claim_amount <= total_charge"; "auto"
            adds the rules every example keeps (checks/propose.py), listed in `self.plan.rules`.
        near_threshold: reject records whose text fields are this similar (0-100) to one
            already made, or to an example or private row (None: exact duplicates only).
        private_rows: real rows the output must not copy or nearly copy.
        plausibility: reject values no real data holds ("N/A", "a", JSON punctuation, one
            value in two text fields; checks/plausible.py) and try again.
        diversity: 0..1, how hard the embedded decoder leans away from values the run (or
            the examples) already have (engine/diversity.py); 0 turns the steer off.
        context: a context line per record ("a retired teacher from Lyon"): a Sampler, or a
            list of strings drawn uniformly; the model writes each record under its own.
        rows: on the embedded model, write each record as a row of values instead of a JSON
            object (engine/surface.py): MedicalBilling 1.3x the records/s, but its round trip
            scored lower (record exact 0.70 -> 0.45 on 20), so it is not the default.
    """

    def __init__(self, schema: Any, model: Any = None, *, examples: Iterable[Any] = (),
                 subject: str = "", extra: str = "", temperature: float = 0.9,
                 seed: int | None = None, max_attempts: int = 8,
                 samplers: dict[str, Sampler] | None = None, rules: Iterable[str] = (),
                 near_threshold: float | None = None, private_rows: Iterable[dict] = (),
                 diversity: float = DEFAULT_DIVERSITY, plausibility: bool = True,
                 context: Sampler | list[str] | None = None, rows: bool = False,
                 backend_options: dict[str, Any] | None = None) -> None:
        if not 0 <= diversity <= 1:
            raise UsageError(f"diversity must be between 0 and 1, got {diversity}")
        self.schema: Schema = load_schema(schema)
        examples, rules, private_rows = list(examples), list(rules), list(private_rows)
        if context is not None and not isinstance(context, Sampler):
            context = contexts_from_list(context)
        auto_rules = AUTO_RULES in rules
        rules = [r for r in rules if r != AUTO_RULES]
        # The plan's description: what a Ray actor builds the same plan from (generate_ray).
        self._plan_options = {"examples": examples, "subject": subject, "extra": extra,
                              "samplers": samplers, "rules": rules,
                              "near_threshold": near_threshold, "private_rows": private_rows,
                              "plausibility": plausibility, "context": context, "rows": rows}
        self.plan = Plan.build(self.schema, **self._plan_options)
        if auto_rules:
            from simulacra.checks.propose import propose_rules

            rules += [r for r in propose_rules(self.schema, self.plan.examples) if r not in rules]
            self.plan = replace(self.plan, rules=parse_rules(rules, {f.name for f in self.schema.fields}))
            self._plan_options["rules"] = rules
        self._model = LazyBackend(model, **(backend_options or {}))
        self.temperature = temperature
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.max_attempts = max_attempts
        self.diversity = diversity
        self._drafted: int | None = None   # records drafted for examples (engine/drafts.py)
        self._next = 0                     # the first index of the next generate/stream call
        self.stats = RunStats()

    def outcomes(self, n: int, ledger: Ledger | None = None, *, done: Iterable[int] = (),
                 prior: Iterable[dict] = (), start: int | None = None) -> Iterator[Outcome]:
        """Valid records with provenance (index, seed, attempts); failures land in `stats`.
        `ledger` gets one row per requested record (see engine.run_records). Indices (and so
        seeds) run on from the previous call, so `generate(5)` twice makes ten different
        records; `start` pins them (a file job always starts at 0, which is how it resumes)."""
        if n < 1:
            raise UsageError(f"the number of records must be at least 1, got {n}")
        if start is None:
            start, self._next = self._next, self._next + n
        self.stats = RunStats()
        if self._drafted is None:   # once per Generator: a second call reuses the same drafts
            from simulacra.engine.drafts import with_drafted_examples

            self.plan, self._drafted = with_drafted_examples(
                self.backend, self.plan, n, seed=self.seed, temperature=self.temperature,
                diversity=self.diversity)
        self.stats.drafted = self._drafted
        yield from run_records(self.backend, self.plan, n, seed=self.seed,
                               temperature=self.temperature, max_attempts=self.max_attempts,
                               stats=self.stats, ledger=ledger, done=done, prior=prior,
                               start=start, diversity=self.diversity)

    def fingerprint(self, n: int) -> str:
        """What defines this job's output: schema, prompt, samplers, rules, model, seed, N."""
        from simulacra.sinks.checkpoint import fingerprint

        plan = self.plan
        return fingerprint(schema=self.schema.json_schema, prompt=plan.prompt(),
                           samplers={k: v.kind for k, v in plan.samplers.items()},
                           rules=[r.text for r in plan.rules], near=plan.near_threshold,
                           model=self.model_key, seed=self.seed, n=n,
                           temperature=self.temperature, diversity=self.diversity,
                           plausibility=plan.plausibility,
                           **({"context": plan.context.kind} if plan.context is not None else {}),
                           **({"rows": True} if plan.rows else {}))

    def finished(self, output: str | Path | None, n: int) -> bool:
        """Whether `output` already holds all `n` records of this job (nothing to make)."""
        from simulacra.sinks.resumable import ResumableOutput

        return ResumableOutput.finished(output, self.fingerprint(n), n)

    def write(self, output: str | Path | None, n: int, *, overwrite: bool = False,
              ledger: bool = True, on_start: Callable[[int], None] | None = None,
              on_record: Callable[[Outcome], None] | None = None) -> WriteReport:
        """Write `n` records to `output` (.jsonl, .csv or .parquet; JSONL on stdout if None)
        as they are made. Rerunning the same job resumes it: the records already written
        are kept and only the missing ones are made (see sinks.resumable). `ledger` writes
        OUTPUT.ledger.jsonl, one row per requested record. `on_start` gets the number already
        written, `on_record` each new outcome. Failed records are in `report.stats.failed`."""
        from simulacra.report.quality import QualityReport
        from simulacra.sinks import check_record_shape
        from simulacra.sinks.resumable import ResumableOutput

        if n < 1:
            raise UsageError(f"the number of records must be at least 1, got {n}")
        check_record_shape(str(output) if output is not None else None, self.schema.is_object)
        if self.finished(output, n) and not overwrite:
            return WriteReport(RunStats(), n, None)
        quality = QualityReport(self.schema, examples=self.plan.examples,
                                rules=self.plan.rules) if n <= QUALITY_LIMIT else None
        try:
            with ResumableOutput(output, self.fingerprint(n), n, overwrite=overwrite,
                                 columns_schema=self.schema.columns_schema(),
                                 ledger=ledger) as out:
                if on_start is not None:
                    on_start(len(out.done))
                for outcome in self.outcomes(n, out.ledger, done=out.done, prior=out.prior,
                                             start=0):
                    out.write(outcome.index, [outcome.data])
                    if quality is not None:
                        quality.add(outcome.data)
                    if on_record is not None:
                        on_record(outcome)
        except OSError as exc:  # the disk filled up, or the output went away mid-run
            raise OutputError(f"writing {output or 'stdout'} failed: {exc.strerror or exc}; "
                              "the records written before are kept") from None
        return WriteReport(self.stats, len(out.done), quality)

    def stream(self, n: int) -> Iterator[Any]:
        """Yield records as they are made; raise GenerationError at the end if some failed."""
        for outcome in self.outcomes(n):
            yield outcome.record
        self._raise_for_failures()

    def generate(self, n: int) -> list[Any]:
        """Return `n` records (model instances, or dicts for a JSON Schema)."""
        return list(self.stream(n))

    def _raise_for_failures(self) -> None:
        if self.stats.failed:
            index, reason = self.stats.failed[-1]
            raise GenerationError(
                f"{len(self.stats.failed)} of {self.stats.requested} records failed after "
                f"{self.max_attempts} attempts each; last: record {index}: {reason}",
                attempts=self.stats.attempts, last_output=self.stats.last_failed_output,
                errors=[r for _, r in self.stats.failed])

    def generate_ray(self, n: int, output: str, *, fmt: str = "parquet", address: str | None = None,
                     actors: int | None = None, cpus_per_actor: float | None = None,
                     shard_size: int | None = None, overwrite: bool = False, log=None,
                     verbose: bool = False):
        """Make `n` records on Ray Data into shard files under the directory `output`
        (see simulacra.engine.ray_data); a rerun of the same job makes only missing shards.
        `address`: a Ray cluster ("auto", "ray://host:port"), or None for a local one;
        `verbose` lets Ray's own log lines through."""
        from simulacra.engine.ray_data import Recipe, recipe_schema, run_on_ray

        if n < 1:
            raise UsageError(f"the number of records must be at least 1, got {n}")
        model = self._model.model
        if model is not None and not isinstance(model, str):
            raise UsageError("on Ray each actor opens its own model: pass a model name "
                             "(gemma-270m, PATH.gguf, openai/NAME), not a backend object")
        if isinstance(model, str) and model.endswith(".gguf"):
            model = str(Path(model).resolve())  # actors may run in another directory
        recipe = Recipe(schema=recipe_schema(self.schema), model=model,
                        plan_options=self._plan_options,
                        run_options={"seed": self.seed, "temperature": self.temperature,
                                     "max_attempts": self.max_attempts,
                                     "diversity": self.diversity},
                        backend_options=dict(self._model.options),
                        embedded=is_embedded(model_name(model)))
        return run_on_ray(recipe, n, output, fmt=fmt, address=address, actors=actors,
                          cpus_per_actor=cpus_per_actor, shard_size=shard_size,
                          fingerprint=self.fingerprint(n), overwrite=overwrite,
                          json_schema=self.schema.json_schema, log=log, verbose=verbose)


def contexts_from_list(values: Any) -> Sampler:
    """`context=[...]`: a list of context lines, drawn uniformly."""
    from simulacra.samplers import category

    if isinstance(values, str) or not all(isinstance(v, str) and v.strip() for v in values):
        raise UsageError("context must be a Sampler or a list of non-empty strings")
    return category(list(values))

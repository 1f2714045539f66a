"""The plan for a run: the prompt a model continues to write one new record.

The embedded model is a base model, so the prompt is a document to continue, not a chat:
a header (subject, fields with types and descriptions, the user's extra instructions), then
example records as JSON lines in exactly the layout the constrained decoder emits
(`{"a": 1, "b": "x"}`), so the model's next line is already in its groove. Each group of
requests gets its own order and subset of the examples (engine/run.py, ORDER_GROUP), so the
model does not see one fixed context.

A run may also give each record a context line ("a retired teacher from Lyon"), drawn by a
sampler (a seed-data column, a list, Faker): the model writes the record right after it, so
records vary with their contexts as Data Designer and distilabel users arrange by hand.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulacra.checks.rules import Rule, parse_rules
from simulacra.errors import UsageError
from simulacra.samplers import Sampler
from simulacra.schema import RecordInvalid, Schema
from simulacra.schema.grammar import SPACED, dumps
from simulacra.schema.model import describe_type

if TYPE_CHECKING:
    from simulacra.engine.surface import RowSurface

MAX_EXAMPLES_IN_PROMPT = 4


@dataclass
class Plan:
    """What to ask for: schema, examples, subject and extra instructions."""

    schema: Schema
    examples: list[dict[str, Any]] = field(default_factory=list)
    text_examples: list[str] = field(default_factory=list)
    subject: str = ""
    extra: str = ""
    samplers: dict[str, Sampler] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    near_threshold: float | None = None
    private_rows: list[dict[str, Any]] = field(default_factory=list)
    plausibility: bool = True   # reject implausible values (checks/plausible.py)
    context: Sampler | None = None   # a context line per record (see with_context)
    rows: bool = False   # embedded model: write records as rows (engine/surface.py)

    def sample(self, rng: random.Random, index: int) -> dict[str, Any]:
        """Values the samplers fix for record `index` (drawn in field order from `rng`)."""
        return {name: sampler(rng, index) for name, sampler in self.samplers.items()}

    @classmethod
    def build(cls, schema: Schema, examples: Iterable[Any] = (), subject: str = "",
              extra: str = "", *, samplers: dict[str, Sampler] | None = None,
              rules: Iterable[str] = (), near_threshold: float | None = None,
              private_rows: Iterable[dict[str, Any]] = (), plausibility: bool = True,
              context: Sampler | None = None, rows: bool = False) -> Plan:
        """Validate the examples against the schema up front, so a bad one fails before any run."""
        records, texts = [], []
        for i, example in enumerate(examples):
            if isinstance(example, str):
                texts.append(" ".join(example.split()))
                continue
            if isinstance(example, dict) and set(example) == {"example"} and isinstance(
                    example["example"], str):  # the tutorial's {"example": "..."} rows
                texts.append(" ".join(example["example"].split()))
                continue
            try:
                record = schema.validate(schema.dump(example) if not isinstance(example, dict)
                                         else example)
            except RecordInvalid as exc:
                raise UsageError(
                    f"example #{i + 1} does not match the schema {schema.name}: {exc.errors[0]}"
                ) from None
            records.append(schema.dump(record))
        fields = {f.name for f in schema.fields}
        unknown = sorted(set(samplers or {}) - fields)
        if unknown:
            raise UsageError(f"sampler for '{unknown[0]}', which is not a field of {schema.name}")
        return cls(schema=schema, examples=records, text_examples=texts, subject=subject,
                   extra=extra, samplers=dict(samplers or {}),
                   rules=parse_rules(list(rules), fields), near_threshold=near_threshold,
                   private_rows=list(private_rows), plausibility=plausibility, context=context,
                   rows=rows)

    def header(self, row: RowSurface | None = None) -> str:
        what = self.subject.replace("_", " ") if self.subject else self.schema.name
        lines = [f"Synthetic data: {what} records ({self.schema.name})."]
        if self.schema.description:
            lines.append(self.schema.description.strip())
        fields = self.schema.fields
        if fields:
            lines.append("Fields:")
        elif not self.schema.is_object:
            shape = describe_type(self.schema, self.schema.normalized) if isinstance(
                self.schema.normalized, dict) else ""
            lines.append(f"Each record is a JSON value{': ' + shape if shape else ''}.")
        for f in fields:
            optional = "" if f.required else ", optional"
            desc = f": {f.description}" if f.description else ""
            if f.examples:
                desc += f" (e.g. {', '.join(json.dumps(v, ensure_ascii=False) for v in f.examples)})"
            lines.append(f"- {f.name} ({f.type}{optional}){desc}")
        if self.extra:
            lines.append(f"Instructions: {self.extra.strip()}")
        per_line = "JSON object" if self.schema.is_object else "JSON value"
        lines.append("Every record is new and made up: different values from the examples and "
                     "from each other. " + (row.instruction() if row is not None
                                            else f"One {per_line} per line."))
        return "\n".join(lines)

    def prompt(self, rng: random.Random | None = None, row: RowSurface | None = None,
               separators: tuple[str, str] = SPACED) -> str:
        """The text to continue; `rng` rotates and subsamples the examples; with `row`,
        records are written as rows (engine/surface.py), else as JSON in the layout of
        `separators` (schema/grammar.py)."""
        examples: Sequence[Any] = self.examples
        texts: Sequence[str] = self.text_examples
        if rng is not None:
            examples = rng.sample(list(examples), min(len(examples), MAX_EXAMPLES_IN_PROMPT))
            texts = rng.sample(list(texts), min(len(texts), MAX_EXAMPLES_IN_PROMPT))
        parts = [self.header(row), ""]
        if texts:
            parts.append("Example records, as text:")
            parts.extend(f"- {t}" for t in texts)
            parts.append("")
            parts.append("Records as JSON:")
        parts.extend(row.render(e) if row is not None else dumps(e, separators)
                     for e in examples)
        return "\n".join(parts) + "\n"


def with_context(prompt: str, context: str) -> str:
    """The prompt for one record with its context line: the last thing before the record,
    so even a small model writes the record under it."""
    return f"{prompt}The next record is about: {' '.join(str(context).split())}\n"

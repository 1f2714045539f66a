"""Samplers fix some fields before the model fills the rest.

A sampled value is forced by constrained decoding (the field's schema becomes a `const` for
that record), so the model writes the other fields conditioned on it. Every sampler draws
from a `random.Random` seeded per record, so `--seed` makes a run repeatable.

Job-file specs (YAML/TOML), one per field:

    patient_name: {faker: name, locale: fr_FR}
    plan: {category: {basic: 0.7, pro: 0.3}}          # or a list of equally likely values
    total_charge: {uniform: [50, 2000], decimals: 2}   # also normal / lognormal
    age: {integer: [18, 90]}
    patient_id: {sequence: {start: 100000, step: 1}}
    id: {uuid: true}
    visit_date: {date: ["2023-01-01", "2024-12-31"]}   # also datetime
    city: {column: {path: cities.csv, column: name}}   # CSV, JSONL or Parquet
    persona: {lines: personas.txt}                     # one value per line of a text file

A run's per-record context line (plan.with_context) is drawn the same way: a job file's
`context:` takes any spec above, `--context` a text file (one context per line) or
`table.csv:column`.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulacra.errors import UsageError
from simulacra.rows import read_rows

Draw = Callable[[random.Random, int], Any]


@dataclass
class Sampler:
    """A named draw: `draw(rng, index)` gives the field's value for record `index`."""

    kind: str
    draw: Draw

    def __call__(self, rng: random.Random, index: int) -> Any:
        return self.draw(rng, index)


def faker(provider: str, locale: str = "en_US", **kwargs: Any) -> Sampler:
    from faker import Faker

    fake = Faker(locale)
    if not hasattr(fake, provider):
        raise UsageError(f"Faker has no provider '{provider}' (e.g. name, address, company, email)")

    def draw(rng: random.Random, index: int) -> Any:
        fake.seed_instance(rng.getrandbits(32))
        value = getattr(fake, provider)(**kwargs)
        return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value

    return Sampler(f"faker:{provider}", draw)


def category(values: list[Any] | dict[Any, float]) -> Sampler:
    if isinstance(values, dict):
        choices, weights = list(values), [float(w) for w in values.values()]
    else:
        choices, weights = list(values), None
    if not choices:
        raise UsageError("a category sampler needs at least one value")
    return Sampler("category", lambda rng, i: rng.choices(choices, weights=weights)[0])


def uniform(low: float, high: float, decimals: int | None = 2) -> Sampler:
    return Sampler("uniform", lambda rng, i: _round(rng.uniform(low, high), decimals))


def normal(mean: float, std: float, decimals: int | None = 2, minimum: float | None = None,
           maximum: float | None = None) -> Sampler:
    def draw(rng: random.Random, index: int) -> float:
        value = rng.gauss(mean, std)
        value = max(value, minimum) if minimum is not None else value
        value = min(value, maximum) if maximum is not None else value
        return _round(value, decimals)

    return Sampler("normal", draw)


def lognormal(mean: float, sigma: float, decimals: int | None = 2) -> Sampler:
    """`mean` and `sigma` of the underlying normal (as random.lognormvariate takes them)."""
    return Sampler("lognormal", lambda rng, i: _round(rng.lognormvariate(mean, sigma), decimals))


def integer(low: int, high: int) -> Sampler:
    return Sampler("integer", lambda rng, i: rng.randint(int(low), int(high)))


def sequence(start: int = 1, step: int = 1) -> Sampler:
    return Sampler("sequence", lambda rng, i: start + step * i)


def uuid4() -> Sampler:
    return Sampler("uuid", lambda rng, i: str(uuid.UUID(int=rng.getrandbits(128), version=4)))


def date(start: str, end: str) -> Sampler:
    lo, hi = dt.date.fromisoformat(str(start)), dt.date.fromisoformat(str(end))
    span = (hi - lo).days
    return Sampler("date", lambda rng, i: (lo + dt.timedelta(days=rng.randint(0, span))).isoformat())


def datetime(start: str, end: str) -> Sampler:
    lo, hi = dt.datetime.fromisoformat(str(start)), dt.datetime.fromisoformat(str(end))
    span = int((hi - lo).total_seconds())
    return Sampler("datetime", lambda rng, i: (lo + dt.timedelta(seconds=rng.randint(0, span)))
                   .isoformat())


def column(path: str, column: str) -> Sampler:
    """Values drawn from a column of a seed data set (CSV, JSONL or Parquet)."""
    values = read_column(Path(path), column)
    return Sampler(f"column:{column}", lambda rng, i: rng.choice(values))


def read_column(path: Path, column: str) -> list[Any]:
    rows = read_rows(path, "seed data file")
    if rows and column not in rows[0]:
        raise UsageError(f"{path} has no column '{column}' (columns: {', '.join(rows[0])})")
    values = [row.get(column) for row in rows]
    values = [v for v in values if v not in (None, "")]
    if not values:
        raise UsageError(f"column '{column}' of {path} holds no values")
    return values


def lines(path: str) -> Sampler:
    """Values drawn from the non-empty lines of a text file."""
    try:
        values = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    values = [v for v in values if v]
    if not values:
        raise UsageError(f"{path} holds no lines to draw from")
    return Sampler(f"lines:{Path(path).name}", lambda rng, i: rng.choice(values))


TABLE_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")


def context_sampler(spec: str) -> Sampler:
    """`--context`: a text file (one context per line) or `table.csv:column` (CSV, JSONL,
    Parquet)."""
    path, sep, name = spec.rpartition(":")
    if sep and Path(path).suffix.lower() in TABLE_SUFFIXES:
        if not Path(path).is_file():
            raise UsageError(f"context file not found: {path}")
        return column(path, name)
    if not Path(spec).is_file():
        raise UsageError(f"context file not found: {spec} (a text file with one context "
                         "per line, or table.csv:column)")
    if Path(spec).suffix.lower() in TABLE_SUFFIXES:
        raise UsageError(f"context {spec}: name the column too, as {spec}:COLUMN")
    return lines(spec)


def _round(value: float, decimals: int | None) -> float:
    return value if decimals is None else round(value, decimals)


_KINDS: dict[str, Callable[..., Sampler]] = {
    "faker": faker, "category": category, "uniform": uniform, "normal": normal,
    "lognormal": lognormal, "integer": integer, "sequence": sequence, "uuid": uuid4,
    "date": date, "datetime": datetime, "column": column, "lines": lines,
}


def from_spec(field: str, spec: dict[str, Any]) -> Sampler:
    """A sampler from a job-file spec (see the module docstring)."""
    if not isinstance(spec, dict):
        raise UsageError(f"sampler for '{field}' must be a mapping like {{faker: name}}")
    kinds = [k for k in spec if k in _KINDS]
    if len(kinds) != 1:
        raise UsageError(f"sampler for '{field}' needs exactly one of: {', '.join(_KINDS)}")
    kind = kinds[0]
    arg = spec[kind]
    options = {k: v for k, v in spec.items() if k != kind}
    try:
        if kind == "faker":
            return faker(arg, **options)
        if kind == "uuid":
            return uuid4()
        if kind == "lines":
            return lines(str(arg))
        if kind == "category":
            return category(arg)
        if kind in ("uniform", "integer", "date", "datetime") and isinstance(arg, list):
            return _KINDS[kind](*arg, **options)
        if isinstance(arg, dict):
            return _KINDS[kind](**arg, **options)
        if isinstance(arg, list):
            return _KINDS[kind](*arg, **options)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"sampler for '{field}' is malformed: {exc}") from None
    raise UsageError(f"sampler for '{field}': {kind} needs a list or a mapping of arguments")

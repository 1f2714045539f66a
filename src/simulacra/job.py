"""A job file (YAML or TOML) holds a whole generation job; `simulacra generate job.yaml` runs it.

    schema: examples/medical_billing.py:MedicalBilling   # paths are relative to the job file
    n: 100
    subject: medical_billing
    extra: the name must be chosen at random
    examples: medical_billing.jsonl                      # a JSONL path, or a list of records
    samplers:
      patient_name: {faker: name}
    context: {lines: personas.txt}   # a context line per record (any sampler spec)
    rules:
      - insurance_claim_amount <= total_charge
    near_duplicates: 90        # reject records this similar (0-100) to an earlier one
    private_data: patients.csv # real rows the output must not copy
    model: gemma-270m
    seed: 7
    output: out.jsonl
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulacra.errors import UsageError
from simulacra.rows import read_rows
from simulacra.samplers import Sampler, from_spec

JOB_SUFFIXES = (".yaml", ".yml", ".toml")
KEYS = {"schema", "n", "subject", "extra", "examples", "samplers", "rules", "near_duplicates",
        "private_data", "model", "seed", "output", "temperature", "context"}


@dataclass
class Job:
    schema: str
    n: int | None = None
    subject: str = ""
    extra: str = ""
    examples: list[dict[str, Any]] = field(default_factory=list)
    samplers: dict[str, Sampler] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    near_duplicates: float | None = None
    private_rows: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    seed: int | None = None
    output: str | None = None
    temperature: float | None = None
    context: Sampler | None = None


def is_job_file(spec: str) -> bool:
    return spec.lower().endswith(JOB_SUFFIXES)


def load_job(path: str | Path) -> Job:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"job file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - yaml and toml raise their own error types
        raise UsageError(f"{path} is not valid {path.suffix[1:].upper()}: "
                         f"{_parse_problem(exc)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must hold a mapping of job settings")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise UsageError(f"{path}: unknown setting '{unknown[0]}' (known: {', '.join(sorted(KEYS))})")
    if "schema" not in data:
        raise UsageError(f"{path} needs a 'schema' setting (file.py:Class or schema.json)")
    base = path.parent

    def rel(value: str) -> str:
        where, sep, name = str(value).rpartition(":")
        target = where if sep and where.endswith(".py") else str(value)
        resolved = base / target
        if resolved.exists():
            return f"{resolved}:{name}" if sep and where.endswith(".py") else str(resolved)
        return str(value)

    samplers = data.get("samplers") or {}
    if not isinstance(samplers, dict):
        raise UsageError(f"{path}: 'samplers' must map field names to sampler specs")
    rules = data.get("rules") or []
    if not isinstance(rules, list):
        raise UsageError(f"{path}: 'rules' must be a list of expressions")
    return Job(
        schema=rel(data["schema"]), n=data.get("n"), subject=data.get("subject", ""),
        extra=data.get("extra", ""), examples=_examples(data.get("examples"), base),
        samplers={name: from_spec(name, _relative_paths(spec, base))
                  for name, spec in samplers.items()},
        rules=[str(r) for r in rules], near_duplicates=data.get("near_duplicates"),
        private_rows=read_rows(base / data["private_data"]) if data.get("private_data") else [],
        model=data.get("model"), seed=data.get("seed"),
        output=str(base / data["output"]) if data.get("output") else None,
        temperature=data.get("temperature"),
        context=from_spec("context", _relative_paths(data["context"], base))
        if data.get("context") is not None else None,
    )


def _relative_paths(spec: Any, base: Path) -> Any:
    if isinstance(spec, dict) and isinstance(spec.get("lines"), str):
        return {**spec, "lines": str(base / spec["lines"])}
    if isinstance(spec, dict) and isinstance(spec.get("column"), dict) and "path" in spec["column"]:
        column = dict(spec["column"])
        column["path"] = str(base / column["path"])
        return {**spec, "column": column}
    return spec


def _examples(value: Any, base: Path) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return read_rows(base / str(value))


def _parse_problem(exc: Exception) -> str:
    """A parser's complaint in one line with its line number: YAML's marks are 0-based and
    its message spans lines; TOML's message already says "(at line N, column M)"."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    text = str(exc).splitlines()
    return text[0] if text else type(exc).__name__

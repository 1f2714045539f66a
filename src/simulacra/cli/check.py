"""`simulacra check SCHEMA`: how every schema keyword is handled, before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from simulacra.schema.load import load_schema_unchecked
from simulacra.schema.size import INFINITE, distinct_instances


def check(
    schema: str = typer.Argument(..., help="file.py:Class, package.module:Class or schema.json"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    examples: Path = typer.Option(None, "--examples", help="Example records (JSONL): also list "
                                  "the rules every example keeps (what --rule auto applies)."),
) -> None:
    """Say which schema keywords are enforced while decoding, checked after, ignored or refused."""

    loaded = load_schema_unchecked(schema)
    report = loaded.support
    rules = proposed_rules(loaded, examples) if not report.refused else []
    if as_json:
        typer.echo(json.dumps({"schema": loaded.name, "dialect": report.dialect,
                               "fields": report.by_field(), "keywords": report.as_dicts(),
                               "proposed_rules": rules}, indent=2))
    else:
        typer.echo(f"{loaded.name} (JSON Schema {report.dialect}):")
        possible = distinct_instances(loaded.decoding_schema(close_objects=False))
        if possible < INFINITE:
            typer.echo(f"  allows {possible} distinct record{'s' if possible != 1 else ''} at most")
        for name, how in report.by_field().items():
            typer.echo(f"  {name}: {how}")
        for how in ("enforced", "checked", "ignored", "refused"):
            entries = [e for e in report.entries if e.how == how]
            if entries:
                typer.echo(f"{how} ({len(entries)}):")
            for entry in entries:
                note = f" - {entry.note}" if entry.note else ""
                typer.echo(f"  {entry.path}{note}")
        source = "the examples and field names" if examples else "the field names"
        typer.echo(f"rules {source} propose (--rule auto): {'; '.join(rules) or 'none'}")
    if report.refused:
        for entry in report.refused:
            typer.echo(f"error: refused {entry.path}: {entry.note}", err=True)
        raise typer.Exit(2)


def proposed_rules(schema, examples: Path | None) -> list[str]:
    """The rules `--rule auto` would add, from the examples (validated) and field names."""
    from simulacra.checks.propose import propose_rules
    from simulacra.plan import Plan
    from simulacra.rows import read_rows

    rows = read_rows(examples, "examples file") if examples is not None else []
    return propose_rules(schema, Plan.build(schema, rows).examples)

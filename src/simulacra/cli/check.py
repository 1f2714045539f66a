"""`simulacra check SCHEMA`: how every schema keyword is handled, before anything runs."""

from __future__ import annotations

import json

import typer

from simulacra.errors import SimulacraError
from simulacra.schema import check_support
from simulacra.schema.load import load_schema_unchecked


def check(
    schema: str = typer.Argument(..., help="file.py:Class, package.module:Class or schema.json"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Say which schema features are enforced while decoding, checked after, or refused."""
    from simulacra.cli.app import fail

    try:
        loaded = load_schema_unchecked(schema)
    except SimulacraError as exc:
        raise fail(exc) from None
    report = check_support(loaded.json_schema)
    if as_json:
        typer.echo(json.dumps({"schema": loaded.name, "fields": report.by_field(),
                               "keywords": report.as_dicts()}, indent=2))
    else:
        typer.echo(f"{loaded.name}:")
        for name, how in report.by_field().items():
            typer.echo(f"  {name}: {how}")
        for entry in report.entries:
            if entry.how in ("checked", "refused"):
                typer.echo(f"  {entry.path}: {entry.how} - {entry.note}")
    if report.refused:
        for entry in report.refused:
            typer.echo(f"error: refused {entry.path}: {entry.note}", err=True)
        raise typer.Exit(2)

"""`simulacra report data.jsonl --schema SCHEMA`: the quality report, HTML with plots and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from simulacra.errors import UsageError


def report(
    data: Path = typer.Argument(..., help="Records: .jsonl, .csv or .parquet."),
    schema: str = typer.Option(..., "--schema", help="file.py:Class, module:Class or schema.json"),
    examples: Path = typer.Option(None, "--examples", help="Few-shot examples to check leakage."),
    rule: list[str] = typer.Option(None, "--rule", help="Cross-field rule to count violations of."),
    near: float = typer.Option(90.0, "--near", min=0.0, max=100.0,
                               help="Near-duplicate similarity threshold (0-100)."),
    output: Path = typer.Option(Path("report.html"), "-o", "--output",
                                help="HTML report; the JSON goes beside it."),
) -> None:
    """Validity, duplicates, diversity per field, leakage and rule violations of a data set."""
    from simulacra.checks.rules import parse_rules
    from simulacra.cli.options import read_examples
    from simulacra.report.quality import QualityReport
    from simulacra.rows import read_rows
    from simulacra.schema import load_schema

    if output.suffix.lower() != ".html":
        raise UsageError(f"the report is HTML: name it something.html, not {output.name}")
    loaded = load_schema(schema)
    rows = read_rows(data)
    if not rows:
        raise UsageError(f"{data} holds no records")
    check_columns(data, rows, [f.name for f in loaded.fields])
    quality = QualityReport(loaded, examples=read_examples(examples),
                            rules=parse_rules(list(rule or []), {f.name for f in loaded.fields}),
                            near_threshold=near)
    for row in rows:
        quality.add(row)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(quality.render(), encoding="utf-8")
    output.with_suffix(".json").write_text(json.dumps(quality.as_dict(), indent=2, default=str))
    typer.echo(quality.summary(), err=True)
    typer.echo(f"wrote {output} and {output.with_suffix('.json')}", err=True)


def check_columns(data: Path, rows: list[dict], fields: list[str]) -> None:
    """Records that share no field with the schema are the wrong file or the wrong schema:
    a report on them would only count every record invalid."""
    columns = {key for row in rows[:100] for key in row}
    if fields and columns and not columns & set(fields):
        shown = ", ".join(sorted(columns)[:6]) + (", ..." if len(columns) > 6 else "")
        raise UsageError(f"{data} has none of the schema's fields ({', '.join(fields[:6])}"
                         f"{', ...' if len(fields) > 6 else ''}); its columns are {shown}")

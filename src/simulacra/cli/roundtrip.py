"""`simulacra roundtrip` and `simulacra score`: the round-trip extraction benchmark."""

from __future__ import annotations

from pathlib import Path

import typer

from simulacra.backends.registry import LazyBackend, is_endpoint
from simulacra.cli.options import BaseUrl, KeyEnv, Model, backend_options
from simulacra.errors import UsageError


def roundtrip(
    schema: str = typer.Argument(..., help="file.py:Class, package.module:Class or schema.json"),
    n: int = typer.Option(20, "-n", "--count", min=1, help="Records to generate and round-trip."),
    model: list[str] = typer.Option(None, "-m", "--model",
                                    help="Model(s); several run the same records side by side."),
    text_model: str = typer.Option(None, "--text-model", help="Model that writes the texts."),
    extract_model: str = typer.Option(None, "--extract-model", help="Model that extracts."),
    style: str = typer.Option(None, "--style", help="Style of the texts."),
    min_length: int = typer.Option(0, "--min-length", help="Minimum characters per text."),
    examples: Path = typer.Option(None, "--examples", help="Few-shot example records (JSONL)."),
    seed: int = typer.Option(0, "--seed", help="Seed for a repeatable run."),
    output: Path = typer.Option(Path("roundtrip-report"), "-o", "--output",
                                help="Directory for report.json and report.html."),
    base_url: BaseUrl = None, api_key_env: KeyEnv = "OPENAI_API_KEY",
) -> None:
    """Generate records, write text from each, extract them back, and score every field."""
    from simulacra.cli.options import read_examples
    from simulacra.report import write_report
    from simulacra.report.roundtrip import render
    from simulacra.roundtrip import roundtrip as run

    names = [*(model or []), text_model, extract_model]
    if base_url and not any(m and is_endpoint(m) for m in names):
        raise UsageError("--base-url needs an endpoint model: -m openai/MODEL_NAME")
    report = run(schema, n, models=model or None, text_model=text_model,
                 extract_model=extract_model, style=style, min_length=min_length, seed=seed,
                 examples=read_examples(examples),
                 endpoint={"base_url": base_url, "api_key_env": api_key_env},
                 log=lambda line: typer.echo(line, err=True))
    data = report.as_dict()
    json_path, html_path = write_report(output, data, render(data))
    _print_summary(data, json_path, html_path)


def score(
    labelled: Path = typer.Argument(..., help='JSONL: {"text": ..., "gold": {...}} per line.'),
    schema: str = typer.Option(..., "--schema", help="file.py:Class, module:Class or schema.json"),
    model: Model = None,
    output: Path = typer.Option(Path("score-report"), "-o", "--output",
                                help="Directory for report.json and report.html."),
    base_url: BaseUrl = None, api_key_env: KeyEnv = "OPENAI_API_KEY",
) -> None:
    """Score extraction on an existing labelled set."""
    from simulacra.cli.jsonl import read_jsonl
    from simulacra.report import write_report
    from simulacra.report.roundtrip import render
    from simulacra.roundtrip import score_labelled

    rows = []
    for number, row in read_jsonl(labelled):
        if not (isinstance(row, dict) and isinstance(row.get("text"), str)
                and isinstance(row.get("gold"), dict)):
            raise UsageError(f'{labelled}:{number} must be {{"text": "...", "gold": {{...}}}}')
        rows.append(row)
    if not rows:
        raise UsageError(f"{labelled} holds no rows")
    endpoint = backend_options(model, base_url, api_key_env)
    data = score_labelled(schema, rows, model=LazyBackend(model, **endpoint)).as_dict()
    json_path, html_path = write_report(output, data, render(data))
    _print_summary(data, json_path, html_path)


def _print_summary(data: dict, json_path: Path, html_path: Path) -> None:
    for name, m in data["models"].items():
        rates = ", ".join(f"{f} {s['match_rate']:.2f}" for f, s in m["fields"].items())
        typer.echo(f"{name}: record exact {m['record_exact_rate']:.2f} · fields: {rates}", err=True)
    typer.echo(f"wrote {json_path} and {html_path}", err=True)

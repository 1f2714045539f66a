"""`simulacra text records.jsonl`: natural text from each record, checked for grounding."""

from __future__ import annotations

from pathlib import Path

import typer

from simulacra.backends.registry import LazyBackend
from simulacra.cli.options import BaseUrl, KeyEnv, Model, backend_options
from simulacra.errors import UsageError
from simulacra.schema import RecordInvalid


def text(
    records: Path = typer.Argument(..., help="JSONL: one record (a JSON object) per line."),
    style: str = typer.Option(None, "--style", help="Style of the texts, e.g. informal."),
    min_length: int = typer.Option(0, "--min-length", help="Minimum characters per text."),
    schema: str = typer.Option(None, "--schema", help="Validate the records against SCHEMA first."),
    output: str = typer.Option(None, "-o", "--output", help="texts.jsonl; stdout if unset."),
    model: Model = None, base_url: BaseUrl = None, api_key_env: KeyEnv = "OPENAI_API_KEY",
    seed: int = typer.Option(None, "--seed", help="Seed for a repeatable run (default 0 with -o, "
                             "so rerunning the command resumes it)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Write one grounded text per record: {"fields", "preferences", "text"} per line."""
    from simulacra.cli.jsonl import input_fingerprint, read_jsonl, refuse_same_file
    from simulacra.schema import load_schema
    from simulacra.sinks.checkpoint import fingerprint
    from simulacra.sinks.resumable import ResumableOutput
    from simulacra.text import TextWriter

    if min_length < 0:
        raise UsageError(f"--min-length must be 0 or more, got {min_length}")
    refuse_same_file(records, output)
    rows = []
    checker = load_schema(schema) if schema else None
    for number, row in read_jsonl(records):
        if not isinstance(row, dict) or not row:
            raise UsageError(f"{records}:{number} must be a non-empty JSON object (a record)")
        if checker is not None:
            try:
                checker.validate(row)
            except RecordInvalid as exc:
                raise UsageError(f"{records}:{number} does not match {checker.name}: "
                                 f"{exc.errors[0]}") from None
        rows.append(row)
    if not rows:
        raise UsageError(f"{records} holds no records")
    ResumableOutput.precheck(output, overwrite=overwrite)
    preferences = {k: v for k, v in (("style", style), ("min_length", min_length)) if v}
    endpoint = backend_options(model, base_url, api_key_env)
    writer = TextWriter(LazyBackend(model, **endpoint), preferences or None,
                        seed=seed if seed is not None or output is None else 0)
    job = fingerprint(task="text", inputs=input_fingerprint(rows), preferences=preferences,
                      model=writer.model_key, seed=writer.seed)
    if ResumableOutput.finished(output, job, len(rows)) and not overwrite:
        typer.echo(f"{output} already holds all {len(rows)} texts of this job: nothing to do "
                   "(--overwrite writes them again)", err=True)
        return
    written = grounded = 0
    with ResumableOutput(output, job, len(rows), overwrite=overwrite) as out:
        if out.done:
            typer.echo(f"resuming: {len(out.done)} of {len(rows)} texts already in {output}",
                       err=True)
        for outcome in writer.outcomes(rows, ledger=out.ledger, done=out.done):
            result = outcome.value
            out.write(outcome.index, [result.as_dict() | {"grounded": result.grounded,
                                                          "missing": result.missing}])
            written += 1
            grounded += result.grounded
    typer.echo(f"{written} texts written · {grounded}/{written} grounded "
               f"({100 * grounded / max(written, 1):.0f}%) · {writer.stats.attempts} attempts",
               err=True)
    if grounded < written:
        raise typer.Exit(1)

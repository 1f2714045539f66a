"""`simulacra extract texts.jsonl --schema SCHEMA`: records back from text."""

from __future__ import annotations

from pathlib import Path

import typer

from simulacra.backends.registry import LazyBackend
from simulacra.cli.options import BaseUrl, KeyEnv, Model, backend_options
from simulacra.errors import UsageError


def extract(
    texts: Path = typer.Argument(..., help='JSONL: {"text": ...} objects or JSON strings.'),
    schema: str = typer.Option(..., "--schema", help="file.py:Class, module:Class or schema.json"),
    many: bool = typer.Option(False, "--many", help="Extract every record in each text."),
    output: str = typer.Option(None, "-o", "--output", help="records.jsonl; stdout if unset."),
    model: Model = None, base_url: BaseUrl = None, api_key_env: KeyEnv = "OPENAI_API_KEY",
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    examples: Path = typer.Option(None, "--examples", help='Labelled pairs (JSONL): '
                                  '{"text": ..., "record": {...}} per line; null marks a field '
                                  'the text does not state.'),
    min_confidence: float = typer.Option(None, "--min-confidence", min=0.0, max=1.0, help=(
        "Null out values the model chose with less than this probability (0-1; default 0.4 "
        "with --examples, else 0); each field's probability is in the ledger.")),
    cross_check: bool = typer.Option(None, "--cross-check/--no-cross-check", help=(
        "Read each text twice, the examples in another order, and keep only the values both "
        "readings state (default: on with 2+ --examples on the embedded model).")),
) -> None:
    """Extract records of SCHEMA from each text; one record per output line."""
    from simulacra.cli.jsonl import input_fingerprint, read_jsonl, refuse_same_file
    from simulacra.extract import Extractor
    from simulacra.sinks.checkpoint import fingerprint
    from simulacra.sinks.resumable import ResumableOutput

    refuse_same_file(texts, output)
    items = []
    for number, row in read_jsonl(texts):
        text = row.get("text") if isinstance(row, dict) else row
        if not isinstance(text, str):
            raise UsageError(f'{texts}:{number} must be {{"text": "..."}} or a JSON string')
        if not text.strip():
            raise UsageError(f"{texts}:{number} has an empty text")
        items.append(text)
    if not items:
        raise UsageError(f"{texts} holds no texts")
    ResumableOutput.precheck(output, overwrite=overwrite)
    pairs = read_pairs(examples) if examples is not None else []
    endpoint = backend_options(model, base_url, api_key_env)
    extractor = Extractor(schema, model=LazyBackend(model, **endpoint), examples=pairs,
                          min_confidence=min_confidence, cross_check=cross_check)
    job = fingerprint(task="extract", inputs=input_fingerprint(items), many=many,
                      schema=extractor.schema.json_schema, model=extractor.model_key,
                      seed=extractor.seed, examples=pairs,
                      min_confidence=extractor.min_confidence, cross_check=cross_check)
    if ResumableOutput.finished(output, job, len(items)) and not overwrite:
        typer.echo(f"{output} already holds the records of all {len(items)} texts of this "
                   "job: nothing to do (--overwrite extracts them again)", err=True)
        return
    written = 0
    with ResumableOutput(output, job, len(items), overwrite=overwrite,
                         columns_schema=extractor.schema.columns_schema()) as out:
        if out.done:
            typer.echo(f"resuming: {len(out.done)} of {len(items)} texts already in {output}",
                       err=True)
        for outcome in extractor.outcomes(items, many=many, ledger=out.ledger, done=out.done):
            rows = (outcome.data if many else [outcome.data]) if outcome.ok else []
            out.write(outcome.index, rows)
            written += len(rows)
    s = extractor.stats
    typer.echo(f"{written} records written from {s.requested} texts · valid {s.valid}/"
               f"{s.requested} ({100 * s.valid / max(s.requested, 1):.0f}%) · {s.attempts} "
               f"attempts", err=True)
    if s.failed:
        raise typer.Exit(1)


def read_pairs(path: Path) -> list[tuple[str, dict]]:
    """Labelled examples for extraction; each record is validated by Extractor."""
    from simulacra.cli.jsonl import read_jsonl

    pairs = []
    for number, row in read_jsonl(path):
        if not (isinstance(row, dict) and isinstance(row.get("text"), str)
                and isinstance(row.get("record"), dict)):
            raise UsageError(f'{path}:{number} must be {{"text": "...", "record": {{...}}}}')
        pairs.append((row["text"], row["record"]))
    if not pairs:
        raise UsageError(f"{path} holds no examples")
    return pairs

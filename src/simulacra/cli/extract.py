"""`simulacra extract texts.jsonl --schema SCHEMA`: records back from text."""

from __future__ import annotations

from pathlib import Path

import typer

from simulacra.errors import SimulacraError, UsageError


def extract(
    texts: Path = typer.Argument(..., help='JSONL: {"text": ...} objects or JSON strings.'),
    schema: str = typer.Option(..., "--schema", help="file.py:Class, module:Class or schema.json"),
    many: bool = typer.Option(False, "--many", help="Extract every record in each text."),
    output: str = typer.Option(None, "-o", "--output", help="records.jsonl; stdout if unset."),
    model: str = typer.Option(None, "-m", "--model", envvar="SIMULACRA_MODEL", help="Model to use."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Extract records of SCHEMA from each text; one record per output line."""
    from simulacra.cli.app import fail
    from simulacra.cli.jsonl import chunks, read_jsonl
    from simulacra.extract import Extractor
    from simulacra.sinks import check_output, open_sink

    sink, ledger, written = None, None, 0
    try:
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
        if output is not None:
            check_output(output, overwrite=overwrite)
        extractor = Extractor(schema, model=model)
        sink = open_sink(output, extractor.schema.json_schema, overwrite=overwrite)
        if output is not None:  # one ledger row per input text, failures included
            ledger = open_sink(str(Path(output).with_suffix("")) + ".ledger.jsonl", overwrite=True)
        index = 0
        for batch in chunks(items, extractor.backend.capabilities.batch):
            for result in extractor.extract_batch(batch, many=many):
                found = [] if isinstance(result, Exception) else (result if many else [result])
                for record in found:
                    sink.write(extractor.schema.dump(record))
                    written += 1
                if ledger is not None:
                    ledger.write({"index": index, "records": len(found),
                                  "outcome": f"failed: {result}" if isinstance(result, Exception)
                                  else "ok"})
                index += 1
    except SimulacraError as exc:
        raise fail(exc) from None
    finally:
        for opened in (sink, ledger):
            if opened is not None:
                opened.close()
    s = extractor.stats
    typer.echo(f"{written} records written from {s.texts} texts · parsed {s.parsed}/{s.texts} "
               f"({100 * s.parsed / s.texts:.0f}%) · valid {s.valid}/{s.texts} "
               f"({100 * s.valid / s.texts:.0f}%)", err=True)
    if s.failures:
        raise typer.Exit(1)

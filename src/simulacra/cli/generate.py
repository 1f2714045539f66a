"""`simulacra generate SCHEMA -n N [-o out.jsonl|.csv|.parquet]`: records, written as they come."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import typer

from simulacra.errors import GenerationError, SimulacraError, UsageError
from simulacra.rows import read_rows

MAX_N = 10**9
QUALITY_LIMIT = 100_000  # past this many records the closing quality summary is skipped (memory)


def generate(
    schema: str = typer.Argument(..., help="file.py:Class, package.module:Class, schema.json, "
                                 "or a job file (job.yaml / job.toml)"),
    n: int = typer.Option(None, "-n", help="Number of records (default 10, or the job's n)."),
    output: str = typer.Option(None, "-o", "--output",
                               help="out.jsonl, out.csv or out.parquet; JSONL on stdout if unset."),
    examples: Path = typer.Option(None, "--examples", help="Few-shot example records (JSONL)."),
    subject: str = typer.Option("", "--subject", help="What the records are about."),
    extra: str = typer.Option("", "--extra", help="Extra instructions for the model."),
    model: str = typer.Option(None, "-m", "--model", envvar="SIMULACRA_MODEL",
                              help="gemma-270m (default), PATH.gguf, or openai/NAME."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint URL."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env",
                                    help="Environment variable holding the API key."),
    concurrency: int = typer.Option(None, "--concurrency",
                                    help="Endpoint requests in flight at most (default 64; adapts "
                                    "below it to 429s and latency)."),
    seed: int = typer.Option(None, "--seed", help="Seed for a repeatable run."),
    temperature: float = typer.Option(0.9, "--temperature", help="Sampling temperature."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    rule: list[str] = typer.Option(None, "--rule", help="Cross-field rule, e.g. 'claim <= total'."),
    near: float = typer.Option(None, "--near",
                               help="Reject records this similar (0-100) to an earlier one."),
    max_attempts: int = typer.Option(8, "--max-attempts", help="Tries per record before it fails."),
    cache: bool = typer.Option(True, "--cache/--no-cache",
                               help="Endpoint replies cached in SQLite (a rerun never pays twice)."),
    only_estimate: bool = typer.Option(False, "--estimate",
                                       help="Print the run's estimate (tokens, time, cost) and stop."),
    price_in: float = typer.Option(None, "--price-in", help="Endpoint price per 1M prompt tokens."),
    price_out: float = typer.Option(None, "--price-out",
                                    help="Endpoint price per 1M generated tokens."),
    ledger: bool = typer.Option(True, "--ledger/--no-ledger",
                                help="With -o, write OUTPUT.ledger.jsonl: one row per requested record."),
    ray: str = typer.Option(None, "--ray", metavar="[ADDRESS]",
                            help="Run on Ray Data: a local cluster, or the one at ADDRESS (auto, "
                            "ray://host:10001); -o is then a directory of shards."),
    actors: int = typer.Option(None, "--actors", help="With --ray: actors (default: from the "
                               "cluster's CPUs, up to 4 CPUs per embedded-model actor)."),
    shard_size: int = typer.Option(None, "--shard-size",
                                   help="With --ray: records per shard (default: ~4 shards per actor)."),
    shard_format: str = typer.Option("parquet", "--format", help="With --ray: parquet or jsonl shards."),
) -> None:
    """Generate N valid, distinct records of SCHEMA (or run a job file)."""
    from simulacra.cli.app import fail
    from simulacra.cli.progress import RecordProgress, summary_line
    from simulacra.estimate import estimate
    from simulacra.generate import Generator
    from simulacra.job import Job, is_job_file, load_job
    from simulacra.report.quality import QualityReport
    from simulacra.schema import load_schema
    from simulacra.sinks import check_output, check_record_shape, open_sink
    from simulacra.sinks.checkpoint import Checkpoint

    sink = ledger_sink = checkpoint = generator = None
    try:
        job = load_job(schema) if is_job_file(schema) else Job(schema=schema)
        n = n if n is not None else (job.n or 10)
        output = output or job.output
        model = model or job.model
        if n < 1:
            raise UsageError(f"-n must be at least 1, got {n}")
        if n > MAX_N:
            raise UsageError(f"-n {n} is more than one run makes ({MAX_N:,}); split the job")
        if ray is not None:
            check_ray_options(output, actors, shard_size, shard_format)
        elif output is not None:
            check_output(output, overwrite=True)  # extension and directory
            Checkpoint.precheck(output, overwrite=overwrite)  # exists, and not resumable
        loaded = load_schema(job.schema)
        check_record_shape(output if ray is None else f"shards.{shard_format}", loaded.is_object)
        if seed is None and job.seed is None and output is not None:
            seed = 0  # a fixed seed makes "run the same command again" resume the same job
        generator = Generator(
            loaded, model=model, examples=read_examples(examples) or job.examples,
            subject=subject or job.subject, extra=extra or job.extra,
            temperature=job.temperature if job.temperature is not None else temperature,
            seed=seed if seed is not None else job.seed, samplers=job.samplers,
            rules=list(rule or []) + job.rules, near_threshold=near or job.near_duplicates,
            private_rows=job.private_rows, max_attempts=max_attempts,
            backend_options=backend_options(model, base_url, api_key_env, cache, concurrency),
        )
        if ray is not None:
            run_ray(generator, n, output, address=ray, fmt=shard_format, actors=actors,
                    shard_size=shard_size, overwrite=overwrite)
            return
        forecast = estimate(generator.plan, generator.backend, n, price_in=price_in,
                            price_out=price_out)
        typer.echo(forecast.line(), err=True)
        if only_estimate:
            return
        quality = QualityReport(generator.schema, examples=generator.plan.examples,
                                rules=generator.plan.rules) if n <= QUALITY_LIMIT else None
        done: list[int] = []
        prior: list[dict] = []
        if output is not None:
            if overwrite:
                Path(ledger_path(output)).unlink(missing_ok=True)
            checkpoint, done, prior = Checkpoint.prepare(output, generator.fingerprint(n), n,
                                                         overwrite=overwrite)
            if done:
                typer.echo(f"resuming: {len(done)} of {n} records already in {output}", err=True)
        sink = open_sink(output, generator.schema.columns_schema(), append=output is not None,
                         on_durable=checkpoint.commit if checkpoint is not None else None)
        if ledger and output is not None:
            ledger_sink = open_sink(ledger_path(output), append=True)
        with RecordProgress(n - len(done), generator.stats) as progress:
            for outcome in generator.outcomes(n, ledger_sink.write if ledger_sink else None,
                                              done=done, prior=prior):
                sink.write(outcome.data)
                if checkpoint is not None:
                    checkpoint.record(outcome.index)
                if quality is not None:
                    quality.add(outcome.data)
                progress.advance()
    except OSError as exc:  # the disk filled up, or the output went away mid-run
        if generator is not None and generator.stats.attempts:
            typer.echo(summary_line(generator.stats, output), err=True)
        raise fail(UsageError(f"writing {output or 'stdout'} failed: {exc.strerror or exc}; "
                              "the records written before are kept")) from None
    except SimulacraError as exc:
        if generator is not None and generator.stats.attempts:  # mid-run: say what was done
            typer.echo(summary_line(generator.stats, output), err=True)
        raise fail(exc) from None
    finally:
        for opened in (sink, ledger_sink, checkpoint):
            if opened is not None:
                with contextlib.suppress(OSError):  # a full disk fails the close too
                    opened.close()
    stats = generator.stats
    typer.echo(summary_line(stats, output), err=True)
    typer.echo(f"actual: {stats.seconds:.0f} s (estimated {forecast.seconds:.0f} s) · "
               f"{stats.tokens_out:,} generated tokens (estimated {forecast.tokens_out:,})", err=True)
    if quality is not None and quality.rows:
        typer.echo(quality.summary(), err=True)
    if stats.failed:
        raise fail(GenerationError(
            f"{len(stats.failed)} of {n} records failed; {stats.valid} were kept",
            attempts=generator.max_attempts, last_output="", errors=[r for _, r in stats.failed]))


def check_ray_options(output: str | None, actors: int | None, shard_size: int | None,
                      shard_format: str) -> None:
    from simulacra.engine.ray_data import check_shard_output

    if output is None:
        raise UsageError("--ray writes shards to a directory: pass -o DIRECTORY")
    for flag, value in (("--actors", actors), ("--shard-size", shard_size)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    check_shard_output(output, shard_format)


def run_ray(generator: Any, n: int, output: str, **options: Any) -> None:
    """The --ray branch: shards on Ray Data, a summary line, exit 1 if records are missing."""
    summary = generator.generate_ray(n, output, log=lambda line: typer.echo(line, err=True),
                                     **options)
    typer.echo(summary.line(output), err=True)
    if summary.records < n:
        raise GenerationError(
            f"{n - summary.records} of {n} records failed; {summary.records} were kept "
            "(rerun the same command to try the missing shards again)",
            attempts=generator.max_attempts, last_output="", errors=[])


def ledger_path(output: str) -> str:
    """out.jsonl -> out.ledger.jsonl (beside the output, whatever its format)."""
    path = Path(output)
    return str(path.with_name(path.stem + ".ledger.jsonl"))


def backend_options(model: str | None, base_url: str | None, api_key_env: str,
                    cache: bool = True, concurrency: int | None = None) -> dict[str, Any]:
    """Options for the model's backend; endpoint flags are refused for the embedded model."""
    if concurrency is not None and concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {concurrency}")
    if model and model.startswith(("openai/", "openai:")):
        options = {"base_url": base_url, "api_key_env": api_key_env, "cache": cache}
        return options | ({"concurrency": concurrency} if concurrency else {})
    for flag, value in (("--base-url", base_url), ("--concurrency", concurrency)):
        if value:
            raise UsageError(f"{flag} needs an endpoint model: -m openai/MODEL_NAME")
    return {}


def read_examples(path: Path | None) -> list[dict[str, Any]]:
    """Example records from a JSONL (or CSV/Parquet) file."""
    return read_rows(path, "examples file") if path is not None else []

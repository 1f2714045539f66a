"""`simulacra generate SCHEMA -n N [-o out.jsonl|.csv|.parquet]`: records, written as they come.

A thin layer: the options become a `Generator` and a `Generator.write` call (or the Ray
branch); errors go to `cli.app.main`'s one policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from simulacra.errors import GenerationError, SimulacraError, UsageError
from simulacra.rows import read_rows

MAX_N = 10**9
Opt = typer.Option
SchemaArg = Annotated[str, typer.Argument(
    help="file.py:Class, package.module:Class, schema.json, or a job file (job.yaml / job.toml)")]
N = Annotated[int, Opt("-n", help="Number of records (default 10, or the job's n).")]
Output = Annotated[str, Opt("-o", "--output",
                            help="out.jsonl, out.csv or out.parquet; JSONL on stdout if unset.")]
Examples = Annotated[Path, Opt("--examples", help="Few-shot example records (JSONL).")]
Subject = Annotated[str, Opt("--subject", help="What the records are about.")]
Extra = Annotated[str, Opt("--extra", help="Extra instructions for the model.")]
Model = Annotated[str, Opt("-m", "--model", envvar="SIMULACRA_MODEL",
                           help="gemma-270m (default), PATH.gguf, or openai/NAME.")]
BaseUrl = Annotated[str, Opt("--base-url", help="OpenAI-compatible endpoint URL.")]
KeyEnv = Annotated[str, Opt("--api-key-env", help="Environment variable holding the API key.")]
Concurrency = Annotated[int, Opt("--concurrency", help="Endpoint requests in flight at most "
                                 "(default 64; adapts below it to 429s and latency).")]
Seed = Annotated[int, Opt("--seed", help="Seed for a repeatable run.")]
Temperature = Annotated[float, Opt("--temperature", help="Sampling temperature.")]
Overwrite = Annotated[bool, Opt("--overwrite", help="Replace an existing output file.")]
Rules = Annotated[list[str], Opt("--rule", help="Cross-field rule, e.g. 'claim <= total'.")]
Near = Annotated[float, Opt("--near", help="Reject records this similar (0-100) to an earlier one.")]
Attempts = Annotated[int, Opt("--max-attempts", help="Tries per record before it fails.")]
Cache = Annotated[bool, Opt("--cache/--no-cache",
                            help="Endpoint replies cached in SQLite (a rerun never pays twice).")]
EstimateOnly = Annotated[bool, Opt("--estimate",
                                   help="Print the run's estimate (tokens, time, cost) and stop.")]
PriceIn = Annotated[float, Opt("--price-in", help="Endpoint price per 1M prompt tokens.")]
PriceOut = Annotated[float, Opt("--price-out", help="Endpoint price per 1M generated tokens.")]
Ledger = Annotated[bool, Opt("--ledger/--no-ledger",
                             help="With -o, write OUTPUT.ledger.jsonl: one row per requested record.")]
Ray = Annotated[str, Opt("--ray", metavar="[ADDRESS]", help="Run on Ray Data: a local cluster, or "
                         "the one at ADDRESS (auto, ray://host:10001); -o is then a directory of shards.")]
Actors = Annotated[int, Opt("--actors", help="With --ray: actors (default: from the cluster's CPUs, "
                            "up to 4 CPUs per embedded-model actor).")]
ShardSize = Annotated[int, Opt("--shard-size",
                               help="With --ray: records per shard (default: ~4 shards per actor).")]
ShardFormat = Annotated[str, Opt("--format", help="With --ray: parquet or jsonl shards.")]
Diversity = Annotated[float, Opt("--diversity", help="0..1: how hard the embedded model leans "
                               "away from values already made (default 0.5; 0: off).")]
Plausibility = Annotated[bool, Opt("--plausibility/--no-plausibility", help="Reject and retry "
                                  "implausible values (N/A, one letter, JSON punctuation).")]
Context = Annotated[str, Opt("--context", metavar="FILE[:COLUMN]", help="A context line per "
                             "record, drawn from a text file (one per line) or a table's column.")]
Threads = Annotated[int, Opt("--threads", envvar="SIMULACRA_THREADS", help="Threads for the "
                             "embedded model (default: the cores this process may use, at most 4).")]


def generate(
    schema: SchemaArg, n: N = None, output: Output = None, examples: Examples = None,
    subject: Subject = "", extra: Extra = "", model: Model = None, base_url: BaseUrl = None,
    api_key_env: KeyEnv = "OPENAI_API_KEY", concurrency: Concurrency = None, seed: Seed = None,
    temperature: Temperature = 0.9, overwrite: Overwrite = False, rule: Rules = None,
    near: Near = None, max_attempts: Attempts = 8, cache: Cache = True,
    only_estimate: EstimateOnly = False, price_in: PriceIn = None, price_out: PriceOut = None,
    ledger: Ledger = True, ray: Ray = None, actors: Actors = None, shard_size: ShardSize = None,
    shard_format: ShardFormat = "parquet", threads: Threads = None, diversity: Diversity = None,
    plausibility: Plausibility = True, context: Context = None,
) -> None:
    """Generate N valid, distinct records of SCHEMA (or run a job file)."""
    from simulacra.cli.progress import RecordProgress, Slowdown, summary_line
    from simulacra.estimate import estimate
    from simulacra.job import Job, is_job_file, load_job
    from simulacra.sinks import check_record_shape
    from simulacra.sinks.resumable import ResumableOutput

    use_threads(threads)
    job = load_job(schema) if is_job_file(schema) else Job(schema=schema)
    n, output = check_n(n if n is not None else (job.n or 10)), output or job.output
    if ray is not None:
        check_ray_options(output, actors, shard_size, shard_format)
    else:
        ResumableOutput.precheck(output, overwrite=overwrite)  # before a model is loaded
    generator = build_generator(job, output=output, examples=examples, subject=subject,
                                extra=extra, model=model or job.model, temperature=temperature,
                                seed=seed, rules=rule, near=near, max_attempts=max_attempts,
                                diversity=diversity, plausibility=plausibility, context=context,
                                backend_options=backend_options(model or job.model, base_url,
                                                                api_key_env, cache, concurrency))
    check_record_shape(output if ray is None else f"shards.{shard_format}", generator.schema.is_object)
    if ray is not None:
        return run_ray(generator, n, output, address=ray, fmt=shard_format, actors=actors,
                       shard_size=shard_size, overwrite=overwrite)
    forecast = estimate(generator.plan, generator.backend, n, price_in=price_in, price_out=price_out)
    typer.echo(forecast.line(), err=True)
    if only_estimate:
        return None
    slowdown = Slowdown(forecast.tokens_out / max(forecast.seconds, 1e-9),
                        embedded=generator.backend.capabilities.grammar,
                        threads=lambda: getattr(generator.backend, "threads", None))
    progress = RecordProgress(n, lambda: generator.stats, on_resume=lambda done: typer.echo(
        f"resuming: {done} of {n} records already in {output}", err=True), slowdown=slowdown)
    try:
        with progress:
            report = generator.write(output, n, overwrite=overwrite, ledger=ledger,
                                     on_start=progress.start, on_record=progress.advance)
    except SimulacraError:
        if generator.stats.attempts:  # mid-run: say what was done before the error line
            typer.echo(summary_line(generator.stats, output), err=True)
        raise
    stats = report.stats
    typer.echo(summary_line(stats, output), err=True)
    typer.echo(f"actual: {stats.seconds:.0f} s (estimated {forecast.seconds:.0f} s) · "
               f"{stats.tokens_out:,} generated tokens (estimated {forecast.tokens_out:,})", err=True)
    if note := slowdown.summary(stats):
        typer.echo(note, err=True)
    if report.quality is not None and report.quality.rows:
        typer.echo(report.quality.summary(), err=True)
    if stats.failed:
        raise GenerationError(f"{len(stats.failed)} of {n} records failed; {stats.valid} were kept",
                              attempts=max_attempts, last_output="",
                              errors=[r for _, r in stats.failed])
    return None


def use_threads(threads: int | None) -> None:
    """--threads: the embedded model reads SIMULACRA_THREADS when it loads."""
    import os

    from simulacra.cpu import ENV_THREADS

    if threads is None:
        return
    if threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    os.environ[ENV_THREADS] = str(threads)


def check_n(n: int) -> int:
    if n < 1:
        raise UsageError(f"-n must be at least 1, got {n}")
    if n > MAX_N:
        raise UsageError(f"-n {n} is more than one run makes ({MAX_N:,}); split the job")
    return n


def build_generator(job: Any, *, output: str | None, examples: Path | None, seed: int | None,
                    temperature: float, rules: list[str] | None, near: float | None,
                    subject: str, extra: str, model: str | None, diversity: float | None = None,
                    context: str | None = None, **options: Any) -> Any:
    """The Generator the options and the job file describe (options win over the job)."""
    from simulacra.generate import Generator
    from simulacra.samplers import context_sampler

    if seed is None and job.seed is None and output is not None:
        seed = 0  # a fixed seed makes "run the same command again" resume the same job
    return Generator(
        job.schema, model=model, examples=read_examples(examples) or job.examples,
        subject=subject or job.subject, extra=extra or job.extra,
        temperature=job.temperature if job.temperature is not None else temperature,
        seed=seed if seed is not None else job.seed, samplers=job.samplers,
        rules=list(rules or []) + job.rules, near_threshold=near or job.near_duplicates,
        private_rows=job.private_rows,
        context=context_sampler(context) if context else job.context, **options,
        **({"diversity": check_diversity(diversity)} if diversity is not None else {}))


def check_diversity(diversity: float) -> float:
    if not 0 <= diversity <= 1:
        raise UsageError(f"--diversity must be between 0 and 1, got {diversity}")
    return diversity


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

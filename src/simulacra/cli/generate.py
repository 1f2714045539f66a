"""`simulacra generate SCHEMA -n N [-o out.jsonl|.csv|.parquet]`: records, written as they come.

A thin layer: the options become a `Generator` and a `Generator.write` call (or the Ray
branch); errors go to `cli.app.main`'s one policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from simulacra.cli.options import (
    MAX_N,
    Actors,
    Attempts,
    BaseUrl,
    Cache,
    Concurrency,
    Context,
    Diversity,
    EstimateOnly,
    Examples,
    Extra,
    KeyEnv,
    Ledger,
    Model,
    N,
    Near,
    Output,
    Overwrite,
    Plausibility,
    PriceIn,
    PriceOut,
    Ray,
    Rows,
    Rules,
    SchemaArg,
    Seed,
    ShardFormat,
    ShardSize,
    Subject,
    Temperature,
    Threads,
    Verbose,
    backend_options,
    read_examples,
)
from simulacra.errors import GenerationError, SimulacraError, UsageError


def generate(
    schema: SchemaArg, n: N = None, output: Output = None, examples: Examples = None,
    subject: Subject = "", extra: Extra = "", model: Model = None, base_url: BaseUrl = None,
    api_key_env: KeyEnv = "OPENAI_API_KEY", concurrency: Concurrency = None, seed: Seed = None,
    temperature: Temperature = 0.9, overwrite: Overwrite = False, rule: Rules = None,
    near: Near = None, max_attempts: Attempts = 8, cache: Cache = True,
    only_estimate: EstimateOnly = False, price_in: PriceIn = None, price_out: PriceOut = None,
    ledger: Ledger = True, ray: Ray = None, actors: Actors = None, shard_size: ShardSize = None,
    shard_format: ShardFormat = "parquet", threads: Threads = None, diversity: Diversity = None,
    plausibility: Plausibility = True, context: Context = None, rows: Rows = False,
    verbose: Verbose = False,
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
        check_ray_options(output, shard_format)
    else:
        ResumableOutput.precheck(output, overwrite=overwrite)  # before a model is loaded
    generator = build_generator(job, output=output, examples=examples, subject=subject,
                                extra=extra, model=model or job.model, temperature=temperature,
                                seed=seed, rules=rule, near=near, max_attempts=max_attempts,
                                diversity=diversity, plausibility=plausibility, context=context,
                                rows=rows, backend_options=backend_options(model or job.model, base_url,
                                                                api_key_env, cache, concurrency))
    check_record_shape(output if ray is None else f"shards.{shard_format}", generator.schema.is_object)
    if ray is not None:
        return run_ray(generator, n, output, address=ray, fmt=shard_format, actors=actors,
                       shard_size=shard_size, overwrite=overwrite, verbose=verbose)
    if not overwrite and generator.finished(output, n):
        return typer.echo(f"{output} already holds all {n} records of this job: nothing to do "
                          "(--overwrite makes them again)", err=True)
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
    return report_run(report, forecast, slowdown, output, n)


def report_run(report: Any, forecast: Any, slowdown: Any, output: str | None, n: int) -> None:
    """The lines after a run: summary, actual against estimate, a slow machine, quality;
    then exit 1 (GenerationError) if records failed."""
    from simulacra.cli.progress import summary_line

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
                              attempts=stats.attempts, last_output=stats.last_failed_output,
                              errors=[r for _, r in stats.failed])


def use_threads(threads: int | None) -> None:
    """--threads: the embedded model reads SIMULACRA_THREADS when it loads."""
    import os

    from simulacra.cpu import ENV_THREADS

    if threads is None:
        return
    os.environ[ENV_THREADS] = str(threads)


def check_n(n: int) -> int:
    """-n is checked where it is parsed; a job file's `n` is checked here."""
    if not 1 <= n <= MAX_N:
        raise UsageError(f"the job's n must be between 1 and {MAX_N:,}, got {n}")
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
        **({"diversity": diversity} if diversity is not None else {}))


def check_ray_options(output: str | None, shard_format: str) -> None:
    from simulacra.engine.ray_data import check_shard_output

    if output is None:
        raise UsageError("--ray writes shards to a directory: pass -o DIRECTORY")
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

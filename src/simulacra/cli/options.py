"""The CLI's options, declared once as Annotated aliases and shared by the commands.

Ranges are checked where the option is parsed (`min`/`max`), so a bad value is a one-line
usage error before anything loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from simulacra.errors import UsageError
from simulacra.rows import read_rows

MAX_N = 10**9
Opt = typer.Option
SchemaArg = Annotated[str, typer.Argument(
    help="file.py:Class, package.module:Class, schema.json, or a job file (job.yaml / job.toml)")]
N = Annotated[int, Opt("-n", "--count", min=1, max=MAX_N,
                       help="Number of records (default 10, or the job's n).")]
Output = Annotated[str, Opt("-o", "--output",
                            help="out.jsonl, out.csv or out.parquet; JSONL on stdout if unset.")]
Examples = Annotated[Path, Opt("--examples", help="Few-shot example records (JSONL).")]
Subject = Annotated[str, Opt("--subject", help="What the records are about.")]
Extra = Annotated[str, Opt("--extra", help="Extra instructions for the model.")]
Model = Annotated[str, Opt("-m", "--model", envvar="SIMULACRA_MODEL",
                           help="gemma-270m (default), PATH.gguf, or openai/NAME.")]
BaseUrl = Annotated[str, Opt("--base-url", help="OpenAI-compatible endpoint URL.")]
KeyEnv = Annotated[str, Opt("--api-key-env", help="Environment variable holding the API key.")]
Concurrency = Annotated[int, Opt("--concurrency", min=1, help="Endpoint requests in flight at most "
                                 "(default 64; adapts below it to 429s and latency).")]
Seed = Annotated[int, Opt("--seed", help="Seed for a repeatable run.")]
Temperature = Annotated[float, Opt("--temperature", min=0.0, max=2.0,
                                   help="Sampling temperature (0-2).")]
Overwrite = Annotated[bool, Opt("--overwrite", help="Replace an existing output file.")]
Rules = Annotated[list[str], Opt("--rule", help="Cross-field rule, e.g. 'claim <= total'.")]
Near = Annotated[float, Opt("--near", min=0.0, max=100.0,
                            help="Reject records this similar (0-100) to an earlier one.")]
Attempts = Annotated[int, Opt("--max-attempts", min=1, help="Tries per record before it fails.")]
Cache = Annotated[bool, Opt("--cache/--no-cache",
                            help="Endpoint replies cached in SQLite (a rerun never pays twice).")]
EstimateOnly = Annotated[bool, Opt("--estimate",
                                   help="Print the run's estimate (tokens, time, cost) and stop.")]
PriceIn = Annotated[float, Opt("--price-in", min=0.0, help="Endpoint price per 1M prompt tokens.")]
PriceOut = Annotated[float, Opt("--price-out", min=0.0, help="Endpoint price per 1M generated tokens.")]
Ledger = Annotated[bool, Opt("--ledger/--no-ledger",
                             help="With -o, write OUTPUT.ledger.jsonl: one row per requested record.")]
Ray = Annotated[str, Opt("--ray", metavar="[ADDRESS]", help="Run on Ray Data: a local cluster, or "
                         "the one at ADDRESS (auto, ray://host:10001); -o is then a directory of shards.")]
Actors = Annotated[int, Opt("--actors", min=1, help="With --ray: actors (default: from the cluster's CPUs, "
                            "up to 4 CPUs per embedded-model actor).")]
ShardSize = Annotated[int, Opt("--shard-size", min=1,
                               help="With --ray: records per shard (default: ~4 shards per actor).")]
Verbose = Annotated[bool, Opt("-v", "--verbose", help="With --ray: show Ray's own log lines.")]
ShardFormat = Annotated[str, Opt("--format", help="With --ray: parquet or jsonl shards.")]
Diversity = Annotated[float, Opt("--diversity", min=0.0, max=1.0, help="0..1: how hard the "
                                 "embedded model leans away from values already made "
                                 "(default 0.5; 0: off).")]
Plausibility = Annotated[bool, Opt("--plausibility/--no-plausibility", help="Reject and retry "
                                  "implausible values (N/A, one letter, JSON punctuation).")]
Rows = Annotated[bool, Opt("--rows", help="Embedded model: write each record as a row of "
                           "values, not a JSON object (faster; see docs/performance.md).")]
Context = Annotated[str, Opt("--context", metavar="FILE[:COLUMN]", help="A context line per "
                             "record, drawn from a text file (one per line) or a table's column.")]
Threads = Annotated[int, Opt("--threads", envvar="SIMULACRA_THREADS", min=1, help="Threads for the "
                             "embedded model (default: the cores this process may use, at most 4).")]



def backend_options(model: str | None, base_url: str | None, api_key_env: str,
                    cache: bool = True, concurrency: int | None = None) -> dict[str, Any]:
    """Options for the model's backend; endpoint flags are refused for the embedded model."""
    from simulacra.backends.registry import is_endpoint

    if model and is_endpoint(model):
        options = {"base_url": base_url, "api_key_env": api_key_env, "cache": cache}
        return options | ({"concurrency": concurrency} if concurrency else {})
    for flag, value in (("--base-url", base_url), ("--concurrency", concurrency)):
        if value:
            raise UsageError(f"{flag} needs an endpoint model: -m openai/MODEL_NAME")
    return {}


def backend_for(model: str | None, base_url: str | None, api_key_env: str) -> Any:
    """The backend a command runs on (the endpoint flags applied), built once."""
    from simulacra.backends.registry import get_backend

    return get_backend(model, **backend_options(model, base_url, api_key_env))


def read_examples(path: Path | None) -> list[dict[str, Any]]:
    """Example records from a JSONL (or CSV/Parquet) file; an empty file is a mistake, not
    a request for a run without examples (leave --examples out for that)."""
    if path is None:
        return []
    rows = read_rows(path, "examples file")
    if not rows:
        raise UsageError(f"examples file {path} holds no records; add some or leave out --examples")
    return rows

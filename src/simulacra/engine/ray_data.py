"""The same job on Ray Data, for runs one machine cannot make in time (`pip install simulacra[ray]`).

    gen = Generator("examples/medical_billing.py:MedicalBilling", examples=EXAMPLES, seed=0)
    summary = gen.generate_ray(1_000_000, "out/", address="auto")

The run is cut into shards of consecutive record indices. A Ray Data pipeline hands the
shards that are not on disk yet to a pool of actors (`map_batches` with an actor class; each
actor builds the plan from the job's `Recipe` and opens one backend: the embedded model, or a
client of an OpenAI-compatible endpoint such as vLLM) and writes each finished shard through
a Ray Data datasink as one file, `shard-00042.parquet` or `.jsonl`, renamed into place only
once complete. Records keep the seeds they have in a single-machine run
(`derive_seed(seed, index, attempt)`), so a shard made twice is the same shard, and a rerun of
the same job only makes the shards that are missing.

Samplers, rules, schema checks and dedup within a shard are the engine's own (run_records).
Exact duplicates across shards are found by a second Ray Data step (a hash per record,
grouped); a shard that holds a later copy is made again with the earlier copies as prior
records, so its seeds move on to other records and the count stays exact. Near-duplicate
search (--near) stays within a shard.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulacra.checks.gate import record_key
from simulacra.errors import UsageError

FORMATS = ("parquet", "jsonl")
MANIFEST = "_job.json"
MAX_DEDUP_ROUNDS = 3
DEFAULT_CPUS_PER_EMBEDDED_ACTOR = 4  # llama.cpp gains little past 4 threads for a 270M model


@dataclass
class Recipe:
    """The job as a description that travels to the actors: each actor builds the plan and
    its own backend from it (backends are not shipped: each opens its own model or client)."""

    schema: Any                    # recipe_schema(...): a spec, a class or a JSON Schema dict
    model: str | None
    plan_options: dict[str, Any]   # Plan.build's arguments (examples, rules, samplers...)
    run_options: dict[str, Any]    # run_records' (seed, temperature, max_attempts, diversity)
    backend_options: dict[str, Any]
    embedded: bool = True  # the model runs in the actor (CPU threads), not behind an endpoint

    def plan(self):
        from simulacra.plan import Plan
        from simulacra.schema import load_schema

        return Plan.build(load_schema(self.schema), **self.plan_options)

    def backend(self):
        from simulacra.backends.registry import get_backend

        return get_backend(self.model, **self.backend_options)


@dataclass
class RaySummary:
    """What a Ray run did; `records` is what the shards hold at the end."""

    n: int
    records: int = 0
    shards: int = 0
    shards_made: int = 0
    shards_kept: int = 0
    failed: int = 0
    duplicates_removed: int = 0
    attempts: int = 0
    tokens_out: int = 0
    actors: int = 0
    actor_processes: set[int] = field(default_factory=set)  # the actors that made shards
    seconds: float = 0.0
    rejected: dict[str, int] = field(default_factory=dict)

    def line(self, output: str) -> str:
        rate = self.records / self.seconds if self.seconds else 0.0
        return (f"{self.records} of {self.n} records in {self.shards} shards in {output} "
                f"({self.shards_made} made, {self.shards_kept} already there) by {self.actors} "
                f"actors · {self.failed} failed · {self.duplicates_removed} cross-shard duplicates "
                f"remade · {self.attempts} attempts · {self.seconds:.0f} s · {rate:.2f} records/s")


@dataclass
class ShardLayout:
    """Where shard k of a run lives, and which shards are complete."""

    directory: Path
    fmt: str
    n: int
    shard_size: int

    @property
    def count(self) -> int:
        return math.ceil(self.n / self.shard_size)

    def span(self, shard: int) -> tuple[int, int]:
        start = shard * self.shard_size
        return start, min(self.n, start + self.shard_size)

    def path(self, shard: int) -> Path:
        return self.directory / f"shard-{shard:05d}.{self.fmt}"

    def rows(self, shard: int) -> int:
        """Records in shard k's file (0 if absent). Files appear only by rename, so a file
        that exists is whole; it has fewer rows than its span when records failed."""
        path = self.path(shard)
        if not path.exists():
            return 0
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())

    def missing(self) -> list[int]:
        """Shards to make: no file, or one short of records (a rerun tries failed ones again)."""
        return [k for k in range(self.count) if self.rows(k) < self.span(k)[1] - self.span(k)[0]]

    def rewrite(self, shard: int, drop: list[dict[str, Any]], json_schema: dict[str, Any]) -> None:
        """Shard k without the records in `drop` (it is then short, and a rerun remakes it)."""
        from simulacra.rows import read_rows

        unwanted = {record_key(r) for r in drop}
        write_shard(self, shard, (r for r in read_rows(self.path(shard), f"shard {shard}")
                                  if record_key(r) not in unwanted), json_schema)

    def present(self) -> list[int]:
        return [k for k in range(self.count) if self.path(k).exists()]


def recipe_schema(schema: Any) -> Any:
    """The schema in a form actors can load: a class from a `file.py:Class` spec goes back to
    that spec with an absolute path (its module exists only in this process), another pydantic
    class travels by reference, a JSON Schema as its dict."""
    model = getattr(schema, "model", None)
    if model is None:
        return schema.json_schema
    module = sys.modules.get(model.__module__)
    if module is not None and module.__name__.startswith("_simulacra_schema_"):
        return f"{Path(module.__file__).resolve()}:{model.__name__}"
    return model


def plan_size(n: int, total_cpus: float, *, embedded: bool, actors: int | None,
              cpus_per_actor: float | None, shard_size: int | None) -> tuple[int, float, int]:
    """Actors, CPUs per actor and shard size from the cluster's CPUs, unless given.

    The embedded model gets up to 4 CPUs (threads) per actor; an endpoint client needs little
    CPU, so it gets one actor per CPU. Shards default to about four per actor, so a slow actor
    or a lost shard costs a quarter of an actor's share, and at most 10,000 records each.
    """
    total = max(1.0, total_cpus)
    if cpus_per_actor is None:
        if not embedded:
            cpus_per_actor = 1.0
        elif actors:
            cpus_per_actor = total / actors
        else:
            cpus_per_actor = min(DEFAULT_CPUS_PER_EMBEDDED_ACTOR, total)
    if actors is None:
        actors = max(1, int(total // cpus_per_actor))
    if shard_size is None:
        shard_size = max(1, min(10_000, math.ceil(n / (actors * 4))))
    return actors, cpus_per_actor, shard_size


class ShardMaker:
    """The actor class of the pipeline: one plan and one backend per actor, kept warm."""

    def __init__(self, recipe: Recipe, threads: int) -> None:
        if threads:  # the embedded model's threads follow the CPUs Ray gave the actor
            recipe.backend_options.setdefault("n_threads", threads)
        self.plan, self.backend, self.run_options = recipe.plan(), recipe.backend(), \
            recipe.run_options

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from simulacra.engine.run import RunStats, run_records

        out: dict[str, list[Any]] = {k: [] for k in (
            "shard", "records", "failed", "attempts", "tokens_out", "rejected", "actor")}
        for shard, start, stop, prior in zip(batch["shard"], batch["start"], batch["stop"],
                                             batch["prior"], strict=True):
            stats = RunStats()
            rows = [o.data for o in run_records(
                self.backend, self.plan, int(stop - start), stats=stats,
                prior=json.loads(prior), start=int(start), **self.run_options)]
            out["shard"].append(int(shard))
            out["records"].append("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            out["failed"].append(len(stats.failed))
            out["attempts"].append(stats.attempts)
            out["tokens_out"].append(stats.tokens_out)
            out["rejected"].append(json.dumps(dict(stats.rejected)))
            out["actor"].append(os.getpid())
        return out


def shard_sink(layout: ShardLayout, json_schema: dict[str, Any]):
    """A Ray Data datasink that writes each shard row as one file, renamed into place whole."""
    from ray.data import Datasink

    class ShardFiles(Datasink):
        def write(self, blocks, ctx) -> list[dict[str, Any]]:
            from ray.data.block import BlockAccessor

            written = []
            for block in blocks:
                for row in BlockAccessor.for_block(block).iter_rows(public_row_format=False):
                    write_shard(layout, int(row["shard"]),
                                map(json.loads, row["records"].splitlines()), json_schema)
                    written.append({"rejected": str(row["rejected"]), **{
                        k: int(row[k]) for k in ("shard", "failed", "attempts", "tokens_out",
                                                 "actor")}})
            return written

        def on_write_complete(self, result) -> None:
            self.results = [r for task in result.write_returns for r in task]

    return ShardFiles()


def write_shard(layout: ShardLayout, shard: int, records: Iterable[dict[str, Any]],
                json_schema: dict[str, Any]) -> None:
    """Write a hidden partial file and rename it into place: readers, and a rerun, see no
    shard or the whole shard."""
    from simulacra.sinks.jsonl import JsonlSink
    from simulacra.sinks.parquet import arrow_table, hidden, write_whole

    final = layout.path(shard)
    if layout.fmt == "parquet":
        write_whole(arrow_table(list(records), json_schema), final)
        return
    partial = hidden(final)
    with partial.open("w", encoding="utf-8") as handle:
        sink = JsonlSink(handle)
        for record in records:
            sink.write(record)
    os.replace(partial, final)


def duplicate_shards(layout: ShardLayout, shards: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The Ray Data dedup step: hash every record of the shards, group by hash, and for each
    hash held more than once name the later shards, with the earlier copy as their prior."""
    import ray.data
    from ray.data.expressions import col

    paths = [str(layout.path(k)) for k in shards]
    if layout.fmt == "parquet":
        ds = ray.data.read_parquet(paths, include_paths=True)
    else:
        ds = ray.data.read_json(paths, lines=True, include_paths=True)

    def keyed(batch):
        import pandas as pd

        records = batch.drop(columns=["path"]).to_dict("records")
        return pd.DataFrame({"key": [record_key(r) for r in records], "path": batch["path"],
                             "record": [json.dumps(r, default=str) for r in records]})

    hashed = ds.map_batches(keyed, batch_format="pandas").materialize()
    counts = hashed.groupby("key", num_partitions=max(1, min(200, len(shards) // 4))).count()
    repeated = {row["key"] for row in counts.filter(expr=col("count()") > 1).take_all()}
    if not repeated:
        return {}
    by_key: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for row in hashed.filter(expr=col("key").is_in(sorted(repeated))).take_all():
        shard = int(Path(row["path"]).name.split("-")[1].split(".")[0])
        by_key.setdefault(row["key"], []).append((shard, json.loads(row["record"])))
    remake: dict[int, list[dict[str, Any]]] = {}
    for copies in by_key.values():
        copies.sort(key=lambda c: c[0])
        first_shard, record = copies[0]
        for shard, _ in copies[1:]:
            if shard != first_shard:
                remake.setdefault(shard, []).append(record)
    return remake


def check_shard_output(output: str | Path, fmt: str) -> Path:
    """Refuse a shard directory or format that cannot work, before anything is loaded."""
    if fmt not in FORMATS:
        raise UsageError(f"shards are {' or '.join(FORMATS)} (--format), not {fmt!r}")
    from simulacra.sinks.base import SUFFIXES, check_directory

    directory = Path(output)
    if directory.suffix.lower() in SUFFIXES:
        raise UsageError(f"shards go to a directory, not a file: {output}")
    check_directory(directory.parent)
    return directory


def connect(address: str | None, *, verbose: bool = False) -> None:
    """Join the cluster at `address` ("auto", "ray://host:port"), or start a local one.

    Ray's own log lines (its warnings, the C++ core worker's, per-dataset INFO) stay out of
    the user's terminal unless `verbose`: simulacra says what the run did in its own words."""
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger("ray").setLevel(level)
    try:
        import ray
    except ImportError:
        raise UsageError("runs on Ray need Ray Data: pip install 'simulacra[ray]'") from None
    import ray.data  # noqa: F401 - sets up its logger, set below

    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(level)
    if ray.is_initialized():
        return
    quiet = {"include_dashboard": False, "log_to_driver": verbose,
             "logging_level": logging.getLevelName(level)}
    try:
        with _core_worker_quiet(not verbose):
            if address in (None, "", "local"):
                ray.init(num_cpus=os.cpu_count(), object_store_memory=256 * 2**20, **quiet)
            else:
                ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        if address == "auto":  # Ray's own message names a flag simulacra does not have
            raise UsageError("--ray auto joins a running Ray cluster and none is running here: "
                             "start one (ray start --head) or use --ray alone for a local "
                             "cluster") from None
        raise UsageError(f"cannot reach the Ray cluster at {address}: {exc}".splitlines()[0]) \
            from None


@contextlib.contextmanager
def _core_worker_quiet(quiet: bool) -> Iterator[None]:
    """Keep the C++ core worker's log lines out of the terminal: its level is read from the
    environment when ray.init starts it, and it says so on stderr, so that one line is
    swallowed here (errors still come back as exceptions). Ray Data's actor pools trip a
    spurious core-worker error line on every run otherwise (ray-project/ray#57733)."""
    if not quiet:
        yield
        return
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def run_on_ray(recipe: Recipe, n: int, output: str | Path, *, fmt: str = "parquet",
               address: str | None = None, actors: int | None = None,
               cpus_per_actor: float | None = None, shard_size: int | None = None,
               fingerprint: str = "", overwrite: bool = False, json_schema: dict | None = None,
               log=None, verbose: bool = False) -> RaySummary:
    """Make the shards of `output` that are missing, then remake cross-shard duplicates."""
    directory = check_shard_output(output, fmt)
    connect(address, verbose=verbose)
    import ray
    import ray.data

    started = time.perf_counter()
    embedded = recipe.embedded
    actors, cpus, shard_size = plan_size(
        n, ray.cluster_resources().get("CPU", 1), embedded=embedded, actors=actors,
        cpus_per_actor=cpus_per_actor, shard_size=shard_size)
    layout = _open_layout(directory, fmt, n, shard_size, fingerprint, overwrite)
    summary = RaySummary(n=n, shards=layout.count, actors=actors)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = sys.stderr.isatty()
    todo: dict[int, list[dict[str, Any]]] = {k: [] for k in layout.missing()}
    summary.shards_kept = layout.count - len(todo)
    if log and summary.shards_kept:
        log(f"resuming: {summary.shards_kept} of {layout.count} shards already in {directory}")
    for round_ in range(MAX_DEDUP_ROUNDS + 1):
        if todo:
            _make(recipe, layout, todo, actors, cpus, embedded, json_schema or {}, summary)
        remake = duplicate_shards(layout, layout.present())
        if not remake:
            break
        for shard, copies in remake.items():
            summary.duplicates_removed += len(copies)
            if round_ == MAX_DEDUP_ROUNDS:  # out of rounds: keep the shard, minus the copies
                layout.rewrite(shard, copies, json_schema or {})
            else:
                layout.path(shard).unlink()
        todo = remake
    summary.records = sum(layout.rows(k) for k in range(layout.count))
    summary.seconds = time.perf_counter() - started
    return summary


def _open_layout(directory: Path, fmt: str, n: int, shard_size: int, fingerprint: str,
                 overwrite: bool) -> ShardLayout:
    """Create the directory, or check that it holds this job's shards (else refuse)."""
    manifest = directory / MANIFEST
    job = {"fingerprint": fingerprint, "n": n, "format": fmt}
    if directory.exists() and overwrite:
        for stale in list(directory.glob("shard-*")) + [manifest]:
            stale.unlink(missing_ok=True)
    if manifest.exists():
        try:
            saved = json.loads(manifest.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise UsageError(f"{manifest} is damaged: pass --overwrite (overwrite=True) to start "
                             "again") from None
        if {k: saved.get(k) for k in job} != job:
            raise UsageError(f"{directory} holds shards of a different job (schema, prompt, model, "
                             "seed, N or format differ); pass --overwrite or use another directory")
        return ShardLayout(directory, fmt, n, int(saved["shard_size"]))
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} exists and is not a simulacra shard directory; "
                         "pass --overwrite or use another directory")
    directory.mkdir(exist_ok=True)
    manifest.write_text(json.dumps({**job, "shard_size": shard_size}) + "\n", encoding="utf-8")
    return ShardLayout(directory, fmt, n, shard_size)


def _make(recipe: Recipe, layout: ShardLayout, todo: dict[int, list[dict[str, Any]]],
          actors: int, cpus: float, embedded: bool, json_schema: dict[str, Any],
          summary: RaySummary) -> None:
    import ray.data

    for stale in layout.directory.glob(".shard-*.partial.*"):  # a killed run's half shard
        stale.unlink()
    items = []
    for shard, prior in sorted(todo.items()):
        start, stop = layout.span(shard)
        items.append({"shard": shard, "start": start, "stop": stop, "prior": json.dumps(prior)})
    pool = min(actors, len(items))
    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        ShardMaker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=pool),
        num_cpus=cpus, fn_constructor_args=(recipe, max(1, int(cpus)) if embedded else 0))
    sink = shard_sink(layout, json_schema)
    # Writing is light: it must not wait for a CPU the actors hold.
    ds.write_datasink(sink, ray_remote_args={"num_cpus": 0})
    for result in sink.results:
        summary.shards_made += 1
        summary.failed += result["failed"]
        summary.attempts += result["attempts"]
        summary.tokens_out += result["tokens_out"]
        summary.actor_processes.add(int(result["actor"]))
        for reason, count in json.loads(result["rejected"]).items():
            summary.rejected[reason] = summary.rejected.get(reason, 0) + count

"""Records/s on the embedded model, in one run: llama-cpp-python's JSON-schema grammar (the
baseline), free decoding (the bound), and simulacra. Same model, same threads, same prompt.

    .venv/bin/python bench/throughput.py [-n 50] [--rounds 3] [--runs 3] [--json] [--all-logits]
        [--schema SPEC [--examples FILE] [--subject TEXT]]   # any schema (MedicalBilling default)
        [--busy-cores K]   # also run simulacra beside K spinning processes, against idle
        [--pair]           # also run two simulacra jobs at once, against one alone
        [--rows]           # also run simulacra writing records as rows (engine/surface.py)
        [--no-screen]      # also run simulacra with the coarse output layer off, interleaved
        [--no-baseline]    # skip the baseline and the bound (for the busy and pair runs)

Where simulacra writes the schema's records as compact JSON (schema/grammar.py), the baseline
runs twice, shown the examples compact (simulacra's prompt) and spaced (json.dumps's), and
the ratio is to the faster of the two: the compact prompt can slow llama-cpp-python's
grammar, whose whitespace is free, and that would flatter simulacra. Likewise simulacra runs
the model file it rewrote for this CPU (BF16 or Q8_0 weights, backends/_gguf.py): the
baseline's faster prompt and the free decoding also run on that file, and the ratios are
to the faster file. simulacra runs in a process of its own, so its peak RSS is its own.

The machine is shared and its speed drifts by 20-40% within minutes, so the measurements
are interleaved: `--rounds` rounds, each running every baseline variant on its share of the
n records, the free decoding and `--runs` simulacra runs of n records spread between them (in
the opposite order every other round). Each rate is its records over its seconds summed
across the rounds, so every method sees the same mix of fast and slow minutes; the
per-round ratios are printed too.

Prints records/s, valid %, unique %, peak RSS and the ratios to the baseline and to the
free-decode bound (free tokens/s divided by tokens per record). `--busy-cores` and `--pair`
also report each request's time per token (median and worst), since on shared cores the
risk is a request stalled for seconds while the average looks fine.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.medical_billing import EXAMPLES, SUBJECT, MedicalBilling  # noqa: E402

from simulacra import Generator, load_schema  # noqa: E402
from simulacra.backends.llamacpp import default_model_path, fast_weights  # noqa: E402
from simulacra.cpu import default_threads  # noqa: E402
from simulacra.plan import Plan  # noqa: E402
from simulacra.schema.grammar import SPACED, separators_for  # noqa: E402

THREADS = default_threads()   # the baseline's; simulacra fits its own to the free cores


def peak_rss_mb() -> float:
    """This process's peak resident memory, MiB. VmHWM, not getrusage's ru_maxrss: a child
    started from a large process inherits the parent's ru_maxrss through exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(prompt: str, n: int, schema, model: Path, first_seed: int = 0) -> dict:
    """llama-cpp-python's own JSON-schema grammar, one record per create_completion call."""
    from llama_cpp import Llama, LlamaGrammar

    llm = Llama(str(model), n_ctx=2048, n_threads=THREADS, verbose=False, seed=1)
    grammar = LlamaGrammar.from_json_schema(json.dumps(schema.json_schema), verbose=False)
    valid, seen, tokens = 0, set(), 0
    started = time.perf_counter()
    for i in range(first_seed, first_seed + n):
        out = llm.create_completion(prompt, grammar=grammar, max_tokens=200, temperature=0.9,
                                    seed=i)
        text = out["choices"][0]["text"]
        tokens += out["usage"]["completion_tokens"]
        try:
            schema.validate(json.loads(text))
            valid += 1
            seen.add(text)
        except ValueError:
            pass
    seconds = time.perf_counter() - started
    llm.close()  # unmaps the model now, so the peak RSS below is simulacra's run
    return {"n": n, "valid": valid, "seen": seen, "tokens": tokens, "seconds": seconds}


def summed(runs: list[dict]) -> dict:
    """Baseline runs of one variant across rounds, as one: records over seconds summed."""
    n, valid = sum(r["n"] for r in runs), sum(r["valid"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    return {"rps": valid / seconds, "valid_pct": 100 * valid / n,
            "unique_pct": 100 * len(set().union(*(r["seen"] for r in runs))) / n,
            "tokens_per_record": sum(r["tokens"] for r in runs) / n, "seconds": seconds}


def free_decode(prompt: str, model: Path, tokens: int = 256) -> tuple[int, float]:
    """Tokens and seconds of unconstrained decoding (one sequence), the speed a grammar
    slows down."""
    from llama_cpp import Llama

    llm = Llama(str(model), n_ctx=2048, n_threads=THREADS, verbose=False, seed=1)
    llm.create_completion(prompt, max_tokens=8)  # warm the prompt
    started = time.perf_counter()
    out = llm.create_completion(prompt, max_tokens=tokens, temperature=0.9, seed=2)
    made = out["usage"]["completion_tokens"]
    seconds = time.perf_counter() - started
    llm.close()  # unmaps the model now, so the peak RSS below is simulacra's run
    return made, seconds


def simulacra_run(job: dict, n: int, batch: int, few_token_logits: bool = True,
                  threads: int | None = None, rows: bool = False, screen: bool = True) -> dict:
    options = {"batch": batch, "few_token_logits": few_token_logits, "screen": screen}
    if threads:
        options["n_threads"] = threads
    gen = Generator(job["schema"], examples=job["examples"], subject=job["subject"], seed=1,
                    backend_options=options, rows=rows)
    token_ms: list[float] = []
    stream = gen.backend.stream

    def timed(requests):   # each request's time per generated token, as it finishes
        for position, completion in stream(requests):
            if completion.tokens_out:
                token_ms.append(1000 * completion.seconds / completion.tokens_out)
            yield position, completion

    gen.backend.stream = timed
    threads_used = getattr(gen.backend, "threads", None)
    attention = getattr(gen.backend, "attention", None)
    records = list(gen.stream(n))
    stats = gen.stats
    gen.close()  # frees the model, so a second run does not count two in the peak RSS
    dumped = [json.dumps(job["schema"].dump(r), sort_keys=True) for r in records]
    unique = len(set(dumped))
    return {"n": n, "valid": stats.valid,
            "rps": stats.valid / stats.seconds, "valid_pct": 100 * stats.valid / n,
            "unique_pct": 100 * unique / n,
            "records": hashlib.sha256("\n".join(dumped).encode()).hexdigest()[:16],
            "tokens_per_record": stats.tokens_out / max(1, stats.attempts),
            "seconds": stats.seconds, "attempts": stats.attempts, "threads": threads_used,
            "attention": attention,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "token_ms_median": round(statistics.median(token_ms), 1) if token_ms else None,
            "token_ms_worst": round(max(token_ms), 1) if token_ms else None}


def combined(runs: list[dict]) -> dict:
    """simulacra's runs across rounds, as one: records over seconds summed."""
    n = sum(r["n"] for r in runs)
    valid = sum(r["valid"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    return {**runs[0], "rps": valid / seconds, "valid_pct": 100 * valid / n,
            "unique_pct": sum(r["unique_pct"] * r["n"] for r in runs) / n,
            "tokens_per_record": sum(r["tokens_per_record"] * r["n"] for r in runs) / n,
            "seconds": seconds, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "token_ms_worst": max(r["token_ms_worst"] or 0 for r in runs)}


@contextlib.contextmanager
def spinning(k: int) -> Iterator[None]:
    """K processes that keep one core busy each, as a busy laptop does."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def worker_command(args: argparse.Namespace, screen: bool = True) -> list[str]:
    command = [sys.executable, __file__, "--worker", "-n", str(args.n), "--batch", str(args.batch)]
    if not screen:
        command.append("--no-screen")
    for flag in ("schema", "examples", "subject"):
        if getattr(args, flag):
            command += [f"--{flag}", str(getattr(args, flag))]
    return command


def in_processes(args: argparse.Namespace, k: int, screen: bool = True) -> list[dict]:
    """K simulacra runs at once, each in a process of its own; their results."""
    procs = [subprocess.Popen(worker_command(args, screen), stdout=subprocess.PIPE, text=True)
             for _ in range(k)]
    return [json.loads(proc.communicate()[0].splitlines()[-1]) for proc in procs]


def pair(args: argparse.Namespace) -> dict:
    """One job alone, then two at once (separate processes, as two users' runs would be)."""
    alone = in_processes(args, 1)[0]
    both = in_processes(args, 2)
    combined = sum(b["rps"] for b in both)   # each over its own run; the runs overlap
    medians = [b["token_ms_median"] for b in both]
    return {"alone_rps": round(alone["rps"], 3), "pair_rps": [round(b["rps"], 3) for b in both],
            "pair_combined_rps": round(combined, 3),
            "pair_vs_alone": round(combined / alone["rps"], 2),
            "pair_threads": [b["threads"] for b in both],
            "pair_token_ms_median": medians,
            "pair_token_ms_worst": [b["token_ms_worst"] for b in both],
            "pair_worst_vs_median": round(max(b["token_ms_worst"] for b in both)
                                          / statistics.median(medians), 2),
            "pair_valid_pct": [b["valid_pct"] for b in both]}


def _interleaved(spread: list, among: list) -> list:
    """`spread`'s items placed evenly among `among`'s: the first before them, the last after."""
    if len(spread) <= 1:
        return spread + among
    # how many of `among` come before each item of `spread`
    before = [round(j * len(among) / (len(spread) - 1)) for j in range(len(spread))]
    out = []
    for i in range(len(among) + 1):
        out += [item for item, b in zip(spread, before, strict=True) if b == i]
        if i < len(among):
            out.append(among[i])
    return out


def load_job(args: argparse.Namespace) -> dict:
    if not args.schema:
        return {"schema": load_schema(MedicalBilling), "examples": EXAMPLES, "subject": SUBJECT,
                "name": "MedicalBilling"}
    examples = []
    if args.examples:
        examples = [json.loads(x) for x in Path(args.examples).read_text().splitlines() if x.strip()]
    schema = load_schema(args.schema)
    return {"schema": schema, "examples": examples, "subject": args.subject or "", "name": schema.name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds (the baselines' n records are split among them)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3,
                        help="simulacra runs per round, spread between the baseline's variants")
    parser.add_argument("--schema", help="schema spec (file.py:Model or a JSON Schema file)")
    parser.add_argument("--examples", help="JSONL examples for --schema")
    parser.add_argument("--subject", help="subject line for --schema")
    parser.add_argument("--busy-cores", type=int, default=0)
    parser.add_argument("--pair", action="store_true")
    parser.add_argument("--rows", action="store_true", help="also run simulacra with rows=True")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-screen", action="store_true",
                        help="also run simulacra with the coarse output layer off "
                             "(backends/_screen.py), one run per round, to see what it saves")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--all-logits", action="store_true",
                        help="also run simulacra with llama.cpp computing every token's logits "
                             "(no few-token logits from the hidden state), to see what that saves")
    args = parser.parse_args()
    job = load_job(args)
    if args.worker:   # one simulacra run for --pair, its result as the last line
        print(json.dumps(simulacra_run(job, args.n, args.batch, screen=not args.no_screen)))
        return
    schema = job["schema"]
    result = {"schema": job["name"], "n": args.n, "batch": args.batch, "rounds": args.rounds}
    variants: dict[tuple[str, str], tuple[str, Path]] = {}
    files: dict[str, Path] = {}
    base = free_tps = None
    if not args.no_baseline:
        plan = Plan.build(schema, job["examples"], subject=job["subject"])
        ours_layout = separators_for(schema.decoding_schema())   # what simulacra is shown
        prompts = {"compact" if layout != SPACED else "spaced":
                   plan.prompt(random.Random(0), separators=layout)
                   for layout in dict.fromkeys([ours_layout, SPACED])}
        shipped = default_model_path()
        ours_file = fast_weights(shipped)
        files = {"shipped": shipped, **({"simulacra's": ours_file} if ours_file != shipped else {})}
        variants = {(layout, name): (prompt, path) for layout, prompt in prompts.items()
                    for name, path in files.items()}
    shares = [args.n // args.rounds + (r < args.n % args.rounds) for r in range(args.rounds)]
    base_runs: dict[tuple[str, str], list[dict]] = {k: [] for k in variants}
    free_runs: dict[str, list[tuple[int, float]]] = {name: [] for name in files}
    ours_runs: list[dict] = []
    unscreened_runs: list[dict] = []
    by_round: list[list[dict]] = []   # simulacra's runs, round by round
    for r, share in enumerate(shares):
        def measured(key, prompt, path, r=r, share=share) -> None:
            base_runs[key].append(baseline(prompt, share, schema, path, first_seed=sum(shares[:r])))

        def freely(name, path) -> None:
            free_runs[name].append(free_decode(next(iter(variants.values()))[0], path))

        # simulacra's runs are spread through the round, between the baseline's variants
        # (a run of simulacra is seconds long, a variant minutes; the machine's speed drifts
        # within minutes), so both sides see the same mix of the round's fast and slow minutes
        others = [lambda k=k, v=v: measured(k, *v) for k, v in variants.items()] + \
            [lambda name=name, path=path: freely(name, path) for name, path in files.items()]
        runs = max(1, args.runs)
        ours_steps = [lambda: by_round[-1].append(in_processes(args, 1)[0])] * runs
        if args.no_screen:
            ours_steps.append(lambda: unscreened_runs.append(in_processes(args, 1, screen=False)[0]))
        steps = _interleaved(ours_steps, others)
        by_round.append([])
        for step in steps if r % 2 == 0 else steps[::-1]:
            step()
    ours_runs = [combined(runs) for runs in by_round]
    ours = combined([run for runs in by_round for run in runs])
    result.update({"simulacra_rps": round(ours["rps"], 3), "valid_pct": ours["valid_pct"],
                   "unique_pct": ours["unique_pct"], "peak_rss_mb": ours["peak_rss_mb"],
                   "tokens_per_record": round(ours["tokens_per_record"], 1),
                   "threads": ours["threads"], "attention": ours["attention"],
                   "token_ms_median": ours["token_ms_median"],
                   "token_ms_worst": ours["token_ms_worst"]})
    if variants:
        bases = {k: summed(runs) for k, runs in base_runs.items()}
        result["baselines"] = {f"examples {layout}, {file} file": {
            "rps": round(b["rps"], 3), "valid_pct": b["valid_pct"],
            "tokens_per_record": round(b["tokens_per_record"], 1)}
            for (layout, file), b in bases.items()}
        best = max(bases, key=lambda k: bases[k]["rps"])
        base = bases[best]
        frees = {name: sum(t for t, _ in runs) / sum(s for _, s in runs)
                 for name, runs in free_runs.items()}
        result["free_tokens_per_s_by_file"] = {k: round(v, 1) for k, v in frees.items()}
        free_tps = max(frees.values())
        bound = free_tps / ours["tokens_per_record"]
        result.update({"baseline_rps": round(base["rps"], 3), "bound_rps": round(bound, 3),
                       "baseline_valid_pct": base["valid_pct"], "baseline_threads": THREADS,
                       "free_tokens_per_s": round(free_tps, 1),
                       "vs_baseline": round(ours["rps"] / base["rps"], 2) if base["rps"] else None,
                       "vs_bound": round(ours["rps"] / bound, 2),
                       "vs_baseline_by_round": [
                           round(o["rps"] / (runs[best]["valid"] / runs[best]["seconds"]), 1)
                           if runs[best]["valid"] else None
                           for o, runs in zip(ours_runs, [
                               {k: v[r] for k, v in base_runs.items()}
                               for r in range(len(shares))], strict=True)]})
    if args.rows:
        rows = simulacra_run(job, args.n, args.batch, rows=True)
        result.update({"rows_rps": round(rows["rps"], 3), "rows_valid_pct": rows["valid_pct"],
                       "rows_unique_pct": rows["unique_pct"],
                       "rows_tokens_per_record": round(rows["tokens_per_record"], 1)})
        if base is not None:
            result["rows_vs_baseline"] = round(rows["rps"] / base["rps"], 2)
            result["rows_vs_bound"] = round(rows["rps"] / (free_tps / rows["tokens_per_record"]), 2)
    if unscreened_runs:
        off = combined(unscreened_runs)
        result.update({"unscreened_rps": round(off["rps"], 3),
                       "screen_by_round": [round(o["rps"] / u["rps"], 2)
                                           for o, u in zip(ours_runs, unscreened_runs, strict=True)],
                       "unscreened_identical": all(u["records"] == o["records"] for o, u in
                                                   zip(ours_runs, unscreened_runs, strict=True))})
    if args.all_logits:
        all_logits = simulacra_run(job, args.n, args.batch, few_token_logits=False)
        result["all_logits_rps"] = round(all_logits["rps"], 3)
    if args.busy_cores:
        with spinning(args.busy_cores):
            busy = simulacra_run(job, args.n, args.batch)
            fixed = simulacra_run(job, args.n, args.batch, threads=default_threads())
        result.update({"busy_cores": args.busy_cores, "busy_rps": round(busy["rps"], 3),
                       "busy_vs_idle": round(busy["rps"] / ours["rps"], 2),
                       "busy_threads": busy["threads"],
                       "busy_token_ms": [busy["token_ms_median"], busy["token_ms_worst"]],
                       "busy_fixed_threads": fixed["threads"],
                       "busy_fixed_vs_idle": round(fixed["rps"] / ours["rps"], 2)})
    if args.pair:
        result.update(pair(args))
    if args.json:
        print(json.dumps(result))
        return
    report(result)


def report(r: dict) -> None:
    if "baseline_rps" in r:
        for name, b in r["baselines"].items():
            print(f"baseline (llama-cpp-python JSON-schema grammar, 1 record/call, "
                  f"{r['baseline_threads']} threads, {name}): {b['rps']:.3f} rec/s, "
                  f"{b['valid_pct']:.0f}% valid, {b['tokens_per_record']} tokens/record")
        print(f"free decoding, by model file: {r['free_tokens_per_s_by_file']} tok/s; the faster: "
              f"{r['free_tokens_per_s']:.1f} tok/s -> bound {r['bound_rps']:.3f} "
              f"rec/s at {r['tokens_per_record']:.1f} tokens/record")
    print(f"simulacra on {r['schema']} (batch {r['batch']}, {r['threads']} threads, "
          f"{r['attention']} attention): "
          f"{r['simulacra_rps']:.3f} rec/s, {r['valid_pct']:.0f}% valid, {r['unique_pct']:.0f}% "
          f"unique, peak RSS {r['peak_rss_mb']} MiB (its own process)")
    if "rows_rps" in r:
        print(f"simulacra --rows: {r['rows_rps']:.3f} rec/s, {r['rows_valid_pct']:.0f}% valid, "
              f"{r['rows_unique_pct']:.0f}% unique, {r['rows_tokens_per_record']} tokens/record"
              + (f"; ratio to baseline {r['rows_vs_baseline']}x, to its free-decode bound "
                 f"{r['rows_vs_bound']}x" if "rows_vs_baseline" in r else ""))
    if "unscreened_rps" in r:
        print(f"simulacra with the screen off: {r['unscreened_rps']:.3f} rec/s (the screen: "
              f"{r['simulacra_rps'] / r['unscreened_rps']:.2f}x as fast; by round "
              f"{r['screen_by_round']}x; the same records: {r['unscreened_identical']})")
    if "all_logits_rps" in r:
        print(f"simulacra, every token's logits from llama.cpp: {r['all_logits_rps']:.3f} rec/s "
              f"(few-token logits: {r['simulacra_rps'] / r['all_logits_rps']:.2f}x as fast)")
    if "vs_baseline" in r:
        print(f"ratio to the faster baseline: {r['vs_baseline']}x   ratio to free-decode bound: "
              f"{r['vs_bound']}x   (over {r['rounds']} interleaved rounds; by round: "
              f"{r['vs_baseline_by_round']}x)")
    if "busy_rps" in r:
        print(f"beside {r['busy_cores']} spinning process(es): {r['busy_rps']:.3f} rec/s = "
              f"{r['busy_vs_idle']:.0%} of idle on {r['busy_threads']} thread(s) (token ms median/"
              f"worst {r['busy_token_ms']}); with the threads fixed at "
              f"{r['busy_fixed_threads']}: {r['busy_fixed_vs_idle']:.0%} of idle")
    if "pair_rps" in r:
        print(f"two jobs at once: {r['pair_rps']} rec/s, combined {r['pair_combined_rps']:.3f} = "
              f"{r['pair_vs_alone']:.0%} of one alone ({r['alone_rps']:.3f}); threads "
              f"{r['pair_threads']}; worst request's token time {r['pair_worst_vs_median']}x the "
              "median")


if __name__ == "__main__":
    main()

"""Records/s on MedicalBilling, in one run: llama-cpp-python's JSON-schema grammar (the
baseline), free decoding (the bound), and simulacra. Same model, same threads, same prompt.

    .venv/bin/python bench/throughput.py [-n 50] [--json] [--all-logits]

Prints records/s, valid %, unique %, peak RSS and the ratios to the baseline and to the
free-decode bound (free tokens/s divided by tokens per record).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.medical_billing import EXAMPLES, SUBJECT, MedicalBilling  # noqa: E402

from simulacra import Generator, load_schema  # noqa: E402
from simulacra.backends.llamacpp import default_model_path  # noqa: E402
from simulacra.plan import Plan  # noqa: E402

THREADS = min(os.cpu_count() or 1, 4)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(prompt: str, n: int, schema_json: dict) -> dict:
    """llama-cpp-python's own JSON-schema grammar, one record per create_completion call."""
    from llama_cpp import Llama, LlamaGrammar

    llm = Llama(str(default_model_path()), n_ctx=2048, n_threads=THREADS, verbose=False, seed=1)
    grammar = LlamaGrammar.from_json_schema(json.dumps(schema_json), verbose=False)
    valid, seen, tokens = 0, set(), 0
    started = time.perf_counter()
    for i in range(n):
        out = llm.create_completion(prompt, grammar=grammar, max_tokens=200, temperature=0.9,
                                    seed=i)
        text = out["choices"][0]["text"]
        tokens += out["usage"]["completion_tokens"]
        try:
            MedicalBilling.model_validate_json(text)
            valid += 1
            seen.add(text)
        except ValueError:
            pass
    seconds = time.perf_counter() - started
    llm.close()  # unmaps the model now, so the peak RSS below is simulacra's run
    return {"rps": valid / seconds, "valid_pct": 100 * valid / n, "unique_pct": 100 * len(seen) / n,
            "tokens_per_record": tokens / n, "seconds": seconds}


def free_decode(prompt: str, tokens: int = 256) -> float:
    """Tokens/s of unconstrained decoding (one sequence), the speed a grammar slows down."""
    from llama_cpp import Llama

    llm = Llama(str(default_model_path()), n_ctx=2048, n_threads=THREADS, verbose=False, seed=1)
    llm.create_completion(prompt, max_tokens=8)  # warm the prompt
    started = time.perf_counter()
    out = llm.create_completion(prompt, max_tokens=tokens, temperature=0.9, seed=2)
    made = out["usage"]["completion_tokens"]
    rate = made / (time.perf_counter() - started)
    llm.close()  # unmaps the model now, so the peak RSS below is simulacra's run
    return rate


def simulacra_run(n: int, batch: int, few_token_logits: bool = True) -> dict:
    gen = Generator(MedicalBilling, examples=EXAMPLES, subject=SUBJECT, seed=1,
                    backend_options={"batch": batch, "few_token_logits": few_token_logits})
    records = list(gen.stream(n))
    stats = gen.stats
    gen.close()  # frees the model, so a second run does not count two in the peak RSS
    unique = len({r.model_dump_json() for r in records})
    return {"rps": stats.valid / stats.seconds, "valid_pct": 100 * stats.valid / n,
            "unique_pct": 100 * unique / n, "tokens_per_record": stats.tokens_out / max(1, stats.attempts),
            "seconds": stats.seconds, "attempts": stats.attempts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--all-logits", action="store_true",
                        help="also run simulacra with llama.cpp computing every token's logits "
                             "(no few-token logits from the hidden state), to see what that saves")
    args = parser.parse_args()
    schema = load_schema(MedicalBilling)
    prompt = Plan.build(schema, EXAMPLES, subject=SUBJECT).prompt(random.Random(0))
    base = baseline(prompt, args.n, schema.json_schema)
    free_tps = free_decode(prompt)
    ours = simulacra_run(args.n, args.batch)
    all_logits = simulacra_run(args.n, args.batch, few_token_logits=False) if args.all_logits else None
    bound = free_tps / ours["tokens_per_record"]
    result = {
        "n": args.n, "baseline_rps": round(base["rps"], 3), "bound_rps": round(bound, 3),
        "simulacra_rps": round(ours["rps"], 3), "valid_pct": ours["valid_pct"],
        "unique_pct": ours["unique_pct"], "peak_rss_mb": round(peak_rss_mb(), 1),
        "baseline_valid_pct": base["valid_pct"], "free_tokens_per_s": round(free_tps, 1),
        "tokens_per_record": round(ours["tokens_per_record"], 1),
        "vs_baseline": round(ours["rps"] / base["rps"], 2) if base["rps"] else None,
        "vs_bound": round(ours["rps"] / bound, 2), "threads": THREADS, "batch": args.batch,
    }
    if all_logits:
        result["all_logits_rps"] = round(all_logits["rps"], 3)
    if args.json:
        print(json.dumps(result))
        return
    print(f"baseline (llama-cpp-python JSON-schema grammar, 1 record/call): "
          f"{base['rps']:.3f} rec/s, {base['valid_pct']:.0f}% valid")
    print(f"free decoding: {free_tps:.1f} tok/s -> bound {bound:.3f} rec/s "
          f"at {ours['tokens_per_record']:.1f} tokens/record")
    print(f"simulacra (batch {args.batch}): {ours['rps']:.3f} rec/s, {ours['valid_pct']:.0f}% valid, "
          f"{ours['unique_pct']:.0f}% unique")
    if all_logits:
        print(f"simulacra, every token's logits from llama.cpp: {all_logits['rps']:.3f} rec/s "
              f"(few-token logits: {ours['rps'] / all_logits['rps']:.2f}x as fast)")
    print(f"ratio to baseline: {result['vs_baseline']}x   ratio to free-decode bound: "
          f"{result['vs_bound']}x   peak RSS {result['peak_rss_mb']} MB (whole process)")


if __name__ == "__main__":
    main()

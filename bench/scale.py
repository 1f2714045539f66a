"""Engine overhead and memory at scale, and the endpoint engine against a slow server.

    .venv/bin/python bench/scale.py [--sizes 1000 10000 100000] [--endpoint-n 200]

1. The scripted backend (no model) at each N, each in a fresh process: records/s and peak
   RSS, writing JSONL to a temporary file. This is the engine's own cost: prompts, parsing,
   validation, dedup, the sink.
2. The OpenAI backend against a loopback OpenAI-compatible server that answers every request
   after a fixed 200 ms: one request at a time, then the adaptive (AIMD) concurrency limit.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import json, resource, sys, time, tempfile
sys.path.insert(0, {root!r})
from examples.medical_billing import MedicalBilling
from simulacra import Generator
from simulacra.backends.base import Capabilities
from simulacra.backends.fake import ScriptedBackend
from simulacra.sinks import open_sink

n = {n}
def reply(request, counter=iter(range(10**9))):
    i = next(counter)
    return json.dumps({{"patient_id": i, "patient_name": f"Name {{i}}", "diagnosis_code": "J20.9",
                       "procedure_code": "99203", "total_charge": 100.0 + i % 900,
                       "insurance_claim_amount": 50.0}})
fake = ScriptedBackend([reply] * n, capabilities=Capabilities(batch=64))
gen = Generator(MedicalBilling, model=fake, seed=1)
with tempfile.TemporaryDirectory() as tmp:
    sink = open_sink(tmp + "/out.jsonl", gen.schema.json_schema)
    start = time.perf_counter()
    for outcome in gen.outcomes(n):
        sink.write(outcome.data)
    sink.close()
    seconds = time.perf_counter() - start
print(json.dumps({{"n": n, "seconds": seconds, "rps": n / seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def engine_at(n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), n=n)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class SlowOpenAI(BaseHTTPRequestHandler):
    """/v1/models and /v1/chat/completions, every answer after LATENCY seconds."""

    LATENCY = 0.2
    counter = itertools.count()

    def log_message(self, *args) -> None:
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "slow", "object": "model"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(self.LATENCY)
        i = next(self.counter)
        record = {"patient_id": i, "patient_name": f"Name {i}", "diagnosis_code": "J20.9",
                  "procedure_code": "99203", "total_charge": 100.0, "insurance_claim_amount": 50.0}
        self._send({"id": f"c{i}", "object": "chat.completion", "created": 0, "model": "slow",
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": json.dumps(record)}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140}})


def endpoint(n: int, adaptive: bool, base_url: str) -> dict:
    from examples.medical_billing import MedicalBilling

    from simulacra import Generator
    from simulacra.backends.openai import OpenAIBackend
    from simulacra.engine import calls

    backend = OpenAIBackend("slow", base_url=base_url, concurrency=64 if adaptive else 1,
                            adaptive=adaptive)
    gen = Generator(MedicalBilling, model=backend, seed=1)
    start = time.perf_counter()
    records = gen.generate(n)
    seconds = time.perf_counter() - start
    backend.close()
    return {"records": len(records), "seconds": seconds, "rps": len(records) / seconds,
            "errors": len(gen.stats.failed), "peak_concurrency": calls.wrap(backend).limit.peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--endpoint-n", type=int, default=640)
    args = parser.parse_args()
    results = [engine_at(n) for n in args.sizes]
    for r in results:
        print(f"engine, scripted backend, N={r['n']:>7}: {r['rps']:8.0f} records/s, "
              f"{r['seconds']:7.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
    first, last = results[0], results[-1]
    print(f"RSS growth N={first['n']} -> N={last['n']}: {last['peak_rss_mb'] - first['peak_rss_mb']:.1f} MB;"
          f" time per record {1e6 * first['seconds'] / first['n']:.0f} us -> "
          f"{1e6 * last['seconds'] / last['n']:.0f} us")
    ThreadingHTTPServer.request_queue_size = 256  # bursts of 64 connections at once
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    seq_n = max(10, args.endpoint_n // 10)
    sequential = endpoint(seq_n, False, base_url)
    adaptive = endpoint(args.endpoint_n, True, base_url)
    server.shutdown()
    print(f"endpoint, 200 ms latency: sequential {sequential['rps']:.2f} records/s "
          f"(N={seq_n}, {sequential['errors']} errors); adaptive {adaptive['rps']:.2f} records/s "
          f"(N={args.endpoint_n}, {adaptive['errors']} errors, peak concurrency "
          f"{adaptive['peak_concurrency']}); ratio {adaptive['rps'] / sequential['rps']:.1f}x")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()

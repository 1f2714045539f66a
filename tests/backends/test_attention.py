"""The patched attention (scripts/llama-fa-gqa.patch) on the real model: the query heads that
share a KV head computed together give llama.cpp's per-head results bit for bit."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded

# Several sequences share a prompt in one KV cache, as the decoder runs them: each call's
# tokens attend to the shared cells, to their own, and skip the other sequences' (masked).
PROBE = r"""
import hashlib, json, sys
from simulacra.backends._decode import BatchDecoder
from simulacra.backends.llamacpp import default_model_path, fast_weights
import numpy as np

d = BatchDecoder(str(fast_weights(default_model_path())), n_seq=6, n_ctx=1024, n_threads=2)
d.warm_up()
ll, ctx, mem = d._ll, d.ctx.ctx, d.ctx.memory
ll.llama_set_embeddings(ctx, True)
prompt = d.tokenize("Patients of a clinic, one JSON record per line: " * 6)
for start in range(0, len(prompt), 63):
    part = range(start, min(start + 63, len(prompt)))
    d._fill([(0, i, prompt[i], False) for i in part])
    assert ll.llama_decode(ctx, d._batch) == 0
for s in range(1, 6):
    ll.llama_memory_seq_cp(mem, 0, s, -1, -1)
digest, pos, rows = hashlib.sha256(), [len(prompt)] * 6, 0
for step in range(8):   # sequences of different lengths; one token each, or a forced run
    items = []
    for s in range(6):
        for k in range(1 + (s + step) % 3):
            items.append((s, pos[s], 1000 + 37 * s + 11 * step + k, True))
            pos[s] += 1
    d._fill(items)
    assert ll.llama_decode(ctx, d._batch) == 0
    for i in range(len(items)):
        hidden = np.ctypeslib.as_array(ll.llama_get_embeddings_ith(ctx, i), shape=(640,))
        digest.update(hidden.tobytes())
        rows += 1
print(json.dumps({"digest": digest.hexdigest(), "rows": rows}))
"""


def _probe(per_head: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SIMULACRA_FA_PER_HEAD"}
    if per_head:
        env["SIMULACRA_FA_PER_HEAD"] = "1"
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _built_for_avx512() -> bool:
    import llama_cpp

    return b"AVX512 = 1" in llama_cpp.llama_print_system_info()


@pytest.mark.skipif(not _built_for_avx512(),
                    reason="the grouped attention is built into AVX-512 builds only")
def test_grouped_attention_equals_the_per_head_loop_bit_for_bit():
    import llama_cpp

    libs = list((Path(llama_cpp.__file__).parent / "lib").glob("libggml-cpu*.so*"))
    assert any(b"SIMULACRA_FA_PER_HEAD" in lib.read_bytes() for lib in libs), \
        "llama-cpp-python was built without scripts/llama-fa-gqa.patch"
    grouped, per_head = _probe(per_head=False), _probe(per_head=True)
    assert grouped["rows"] == per_head["rows"] > 50
    assert grouped["digest"] == per_head["digest"]
    assert grouped["digest"] != hashlib.sha256().hexdigest()   # hidden states were read

"""The patched attention (scripts/llama-fa-gqa.patch) on the real model.

Its exact kernel (SIMULACRA_EXACT_ATTENTION=1), the query heads that share a KV head computed
together, gives llama.cpp's per-head results bit for bit. Its float32 kernel, the decoder's
default, differs from both in rounding: its next-token distributions must be as close to
llama.cpp's attention without flash attention as upstream's flash attention is."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulacra.backends._output_layer import OutputLayer

pytestmark = pytest.mark.embedded

# Several sequences share a prompt in one KV cache, as the decoder runs them: each call's
# tokens attend to the shared cells, to their own, and skip the other sequences' (masked).
PROBE = r"""
import hashlib, json, os, sys
import simulacra.backends._decode as decode
from simulacra.backends._decode import BatchDecoder
from simulacra.backends.llamacpp import default_model_path, fast_weights
import numpy as np

decode.FLASH_ATTN = int(os.environ.get("PROBE_FLASH", "1"))
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
digest, pos, rows, states = hashlib.sha256(), [len(prompt)] * 6, 0, []
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
        states.append(hidden.copy())
        rows += 1
np.save(sys.argv[1], np.array(states))
print(json.dumps({"digest": digest.hexdigest(), "rows": rows}))
"""


KERNELS = ("SIMULACRA_FA_PER_HEAD", "SIMULACRA_FA_FLOAT32", "SIMULACRA_EXACT_ATTENTION")


def _probe(tmp_path: Path, *, kernel: str | None = None, flash: bool = True) -> dict:
    """Hidden states of the probe's steps (in a process of its own: the kernel is chosen once
    per process), their digest, and how many rows were read."""
    env = {k: v for k, v in os.environ.items() if k not in KERNELS}
    if kernel:
        env[kernel] = "1"
    env["PROBE_FLASH"] = "1" if flash else "0"
    states = tmp_path / f"{kernel or 'default'}-{int(flash)}.npy"
    out = subprocess.run([sys.executable, "-c", PROBE, str(states)], env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["states"] = np.load(states)
    return result


def _built_for_avx512() -> bool:
    import llama_cpp

    return b"AVX512 = 1" in llama_cpp.llama_print_system_info()


def _patched_libraries() -> list[bytes]:
    import llama_cpp

    libs = list((Path(llama_cpp.__file__).parent / "lib").glob("libggml-cpu*.so*"))
    return [lib.read_bytes() for lib in libs]


needs_patch = pytest.mark.skipif(not _built_for_avx512(),
                                 reason="the grouped attention is built into AVX-512 builds only")


def _distributions(layer: OutputLayer, states: np.ndarray) -> np.ndarray:
    """Next-token probabilities for every fourth row, through the model's output layer."""
    rows = states[::4].astype(np.float32)
    chunk = layer.MAX_CACHED
    logits = np.concatenate([rows @ layer.weights(np.arange(a, min(a + chunk, layer.n_vocab))).T
                             for a in range(0, layer.n_vocab, chunk)], axis=1).astype(np.float64)
    if layer.softcap:
        logits = np.tanh(logits / layer.softcap) * layer.softcap
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(p - q).sum(axis=1).mean())


@needs_patch
def test_grouped_kernel_equals_the_per_head_loop_bit_for_bit(tmp_path):
    assert any(b"SIMULACRA_FA_FLOAT32" in lib for lib in _patched_libraries()), \
        "llama-cpp-python was built without scripts/llama-fa-gqa.patch"
    grouped = _probe(tmp_path, kernel="SIMULACRA_EXACT_ATTENTION")
    per_head = _probe(tmp_path, kernel="SIMULACRA_FA_PER_HEAD")
    assert grouped["rows"] == per_head["rows"] > 50
    assert grouped["digest"] == per_head["digest"]
    assert grouped["digest"] != hashlib.sha256().hexdigest()   # hidden states were read


@needs_patch
def test_float32_kernel_is_as_close_to_attention_without_flash_as_upstream(tmp_path):
    fast = _probe(tmp_path)   # the decoder's default
    upstream = _probe(tmp_path, kernel="SIMULACRA_FA_PER_HEAD")
    plain = _probe(tmp_path, flash=False)   # llama.cpp's attention as matrix products
    assert fast["digest"] != upstream["digest"]   # the float32 kernel ran
    from simulacra.backends.llamacpp import default_model_path, fast_weights

    layer = OutputLayer.from_gguf(fast_weights(default_model_path()))
    assert layer is not None
    p_fast, p_up, p_plain = (_distributions(layer, r["states"]) for r in (fast, upstream, plain))
    # Measured: 0.040 (float32 kernel) and 0.043 (upstream) from the plain attention, 0.043
    # between the two; a kernel that mixed up cells or heads is far from all of them.
    assert _total_variation(p_fast, p_plain) <= _total_variation(p_up, p_plain) + 0.02
    assert _total_variation(p_fast, p_up) < 0.1
    assert (p_fast.argmax(axis=1) == p_up.argmax(axis=1)).mean() >= 0.9


def test_the_decoder_asks_for_the_float32_kernel_unless_told_exact(monkeypatch):
    from simulacra.backends._decode import attention_from_environment

    for name in KERNELS:
        monkeypatch.delenv(name, raising=False)
    assert attention_from_environment() == "float32"
    assert os.environ["SIMULACRA_FA_FLOAT32"] == "1"
    monkeypatch.setenv("SIMULACRA_EXACT_ATTENTION", "1")
    assert attention_from_environment() == "exact"
    assert "SIMULACRA_FA_FLOAT32" not in os.environ
    monkeypatch.setenv("SIMULACRA_EXACT_ATTENTION", "0")
    assert attention_from_environment() == "float32"

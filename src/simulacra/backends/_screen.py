"""Logits from a coarse screen, made exact where sampling can reach.

A decode step that has any sequence inside a string (where the grammar allows nearly every
token) needs that sequence's logit for all 262,144 tokens; llama.cpp gets them by reading
the whole BF16 output layer (335 MB) for them, about 2.4 ms a row on this project's 2 cores
(1.7 from a Q4_0 copy, which the screen used to read inside llama.cpp). Instead llama.cpp
returns those rows' final hidden states, and `_screen.c` computes coarse logits from a
4-bit copy of the layer packed at the first load and kept in the cache (94 MB: 4 bits a
weight and a float16 scale per 32, as Q4_0 rounds them), 16 tokens per AVX512-VNNI
instruction: about 0.7 ms a row, all the step's rows in one call, on 2 threads. They are
off by up to about 2.5 near the best token. But min-p sampling keeps only tokens within
T * ln(1 / MIN_P) of the best allowed logit, so every token it could keep has a coarse
logit within that window plus the two errors' difference of the best coarse one. Those
tokens (usually tens, a few thousand where the model has no favourite) get their exact
logits (`screen_refine_rows`: a BF16 row times the hidden state, as llama.cpp's BF16 product
computes it), and sampling sees only them: the records are the ones llama.cpp's exact
logits give.

The C file is compiled on first use into the cache directory; without a C compiler, or on a
CPU without AVX512-BF16 and VNNI, the screen is off and every row gets llama.cpp's exact
logits.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simulacra.backends._gguf import BF16, read_layout
from simulacra.backends._model_cache import cached_arrays
from simulacra.cache import cache_home

# Logits added to sampling's window: a token min-p keeps may have a coarse logit this much
# further below the best coarse one than its exact logit is below the best exact one (each
# coarse logit is off by up to about 2.5; what matters is the two errors' difference). On
# 641 rows of a customer-profile and a MedicalBilling run (Gemma 3 270M), the most any kept
# token needed was 2.50 (the 99th percentile 2.18), the window below being min-p's, the
# steer's margin and any lift; llama.cpp's Q4_0 product of the same layer needed 2.32.
SLACK = 3.5
SOURCE = Path(__file__).with_name("_screen.c")
# The portable floor (the same as scripts/install-llama.sh's); AVX512-BF16 where the llama.cpp
# build has it (it is built with it where the CPU has it), whose dot-product instruction is
# also the one llama.cpp's BF16 product uses, with AVX512-VNNI for the coarse layer.
FLAGS = ["-O3", "-mavx2", "-mfma", "-mf16c", "-shared", "-fPIC", "-fopenmp"]
BF16_FLAGS = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-mavx512vnni"]
GROUP, BLOCK = 16, 32   # _screen.c's packing: tokens per vector, values per scale
REFINED = 1 << 16       # entries of refine_rows' shared output to start with (grown if needed)


class Screen:
    """The coarse output layer (packed at load from the BF16 token embeddings, where
    llama.cpp holds them) and the compiled kernels. `coarse` turns a step's hidden states
    into coarse logits; `refine` one coarse row into (exact logits, token ids)."""

    def __init__(self, lib: ctypes.CDLL, weights: int, n_vocab: int, n_embd: int,
                 packed: np.ndarray, scales: np.ndarray) -> None:
        self._lib = lib
        self._weights = weights   # address of the (n_vocab, n_embd) BF16 token embeddings
        self.n_vocab, self.n_embd = n_vocab, n_embd
        self._packed, self._scales = packed, scales   # made by `pack`
        self._coarse = np.empty((0, n_vocab), dtype=np.float32)
        # refine_rows' output, shared by a step's rows (a row may need up to n_vocab entries,
        # but a step's rows together rarely need more than a few thousand)
        self._ids = np.empty(REFINED, dtype=np.int32)
        self._exact = np.empty(REFINED, dtype=np.float32)

    @staticmethod
    def pack(lib: ctypes.CDLL, weights: int, n_vocab: int, n_embd: int,
             n_threads: int) -> dict[str, np.ndarray]:
        """The coarse layer of BF16 token embeddings: 4-bit weights and their scales."""
        packed = np.empty(n_vocab * n_embd // 2, dtype=np.uint8)
        scales = np.empty(n_vocab * n_embd // BLOCK, dtype=np.uint16)
        if lib.screen_pack(weights, n_vocab, n_embd, packed.ctypes.data, scales.ctypes.data,
                           n_threads) != 0:
            raise RuntimeError("this CPU or model cannot have a coarse output layer")
        return {"packed": packed, "scales": scales}

    @classmethod
    def load(cls, model_path: str | Path, weights: int | None, n_threads: int) -> Screen | None:
        """The screen of a model whose tied output layer is BF16, or None: another type, a
        size the packing does not handle, no C compiler or no AVX512-VNNI here. `weights`:
        the address of the token embeddings in the loaded model (llama.cpp's own copy: a
        second mapping of the file would count every page it touches twice)."""
        layout = read_layout(model_path)
        if layout is None or not weights:
            return None
        embd = layout.tensor("token_embd.weight")
        if embd is None or embd.kind != BF16 or layout.tensor("output.weight") is not None:
            return None
        n_embd, n_vocab = embd.dims
        if n_vocab % GROUP or n_embd % BLOCK or n_embd > 4096:
            return None
        lib = _compiled()
        if lib is None:
            return None
        try:
            # kept in the cache for this model and this build of the kernels (0.3 s to pack)
            layer = cached_arrays(model_path, "screen", Path(lib._name).stem,
                                  lambda: cls.pack(lib, weights, n_vocab, n_embd, n_threads))
        except RuntimeError:   # built without VNNI
            return None
        return cls(lib, weights, n_vocab, n_embd, layer["packed"], layer["scales"])

    def coarse(self, hidden: np.ndarray, n_threads: int) -> np.ndarray:
        """Coarse logits (rows, n_vocab) of final hidden states (rows, n_embd), on
        `n_threads` threads; a view valid until the next call."""
        state = np.ascontiguousarray(hidden, dtype=np.float32)
        rows = len(state)
        if rows > len(self._coarse):
            self._coarse = np.empty((rows, self.n_vocab), dtype=np.float32)
        out = self._coarse[:rows]
        if self._lib.screen_coarse(self._packed.ctypes.data, self._scales.ctypes.data,
                                   self.n_vocab, self.n_embd, state.ctypes.data, rows,
                                   out.ctypes.data, n_threads) != 0:
            raise RuntimeError("the screen cannot handle these hidden states")
        return out

    def refine_rows(self, rows: Sequence[tuple[np.ndarray, np.ndarray | None, np.ndarray, float]],
                    n_threads: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each (coarse logits, mask, hidden state, window) row: the exact logits and ids
        of the allowed tokens (`mask`: llguidance's bitmask, or None for every token) whose
        coarse logit is within `window` + SLACK of the best allowed one's. The rows are
        refined together on `n_threads` threads into shared buffers, grown when a step
        needs more; the arrays are valid until the next call."""
        n = len(rows)
        # the caller's arrays, kept alive by `keep` while C reads them
        keep = [(np.ascontiguousarray(coarse, dtype=np.float32),
                 None if mask is None else np.ascontiguousarray(mask),
                 np.ascontiguousarray(hidden, dtype=np.float32)) for coarse, mask, hidden, _ in rows]
        pointers = ctypes.c_void_p * n
        coarse_rows = pointers(*(c.ctypes.data for c, _, _ in keep))
        masks = pointers(*(None if m is None else m.ctypes.data for _, m, _ in keep))
        states = pointers(*(h.ctypes.data for _, _, h in keep))
        windows = np.array([window + SLACK for *_, window in rows], dtype=np.float32)
        offsets, counts = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int32)
        while True:
            needed = self._lib.screen_refine_rows(
                n, coarse_rows, self.n_vocab, masks, self._weights, states, self.n_embd,
                windows.ctypes.data, self._ids.ctypes.data, self._exact.ctypes.data,
                len(self._ids), offsets.ctypes.data, counts.ctypes.data, n_threads)
            if needed < 0:
                raise RuntimeError("the screen could not refine its rows (an unhandled hidden "
                                   "size, or no memory)")
            if needed <= len(self._ids):
                break
            self._ids = np.empty(2 * needed, dtype=np.int32)   # rare: many wide rows at once
            self._exact = np.empty(2 * needed, dtype=np.float32)
        return [(self._exact[at:at + count], self._ids[at:at + count])
                for at, count in zip(offsets.tolist(), counts.tolist(), strict=True)]


def _compiled() -> ctypes.CDLL | None:
    """`_screen.c` compiled for this machine (once, into the cache), or None."""
    from simulacra.backends.llamacpp import has_bf16_kernels

    source = SOURCE.read_bytes()
    compiler = os.environ.get("CC", "cc")
    flags = FLAGS + (BF16_FLAGS if has_bf16_kernels() and _cpu_has("avx512_vnni") else [])
    key = hashlib.sha256(source + " ".join([compiler, *flags]).encode()).hexdigest()[:16]
    built = cache_home() / "lib" / f"screen-{key}.so"
    if not built.is_file():
        try:
            built.parent.mkdir(parents=True, exist_ok=True)
            partial = built.with_name(f".{built.name}.{os.getpid()}")
            subprocess.run([compiler, *flags, "-o", str(partial), str(SOURCE)], check=True,
                           capture_output=True, timeout=120)
            os.replace(partial, built)
            for stale in built.parent.glob("screen-*.so"):   # builds of an older source
                if stale != built:
                    stale.unlink(missing_ok=True)
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        lib = ctypes.CDLL(str(built))
    except OSError:
        return None
    pointer, i32 = ctypes.c_void_p, ctypes.c_int32
    i64 = ctypes.c_int64
    lib.screen_refine_rows.argtypes = [i32, pointer, i32, pointer, pointer, pointer, i32,
                                       pointer, pointer, pointer, i64, pointer, pointer, i32]
    lib.screen_pack.argtypes = [pointer, i32, i32, pointer, pointer, i32]
    lib.screen_coarse.argtypes = [pointer, pointer, i32, i32, pointer, i32, pointer, i32]
    for fn in (lib.screen_pack, lib.screen_coarse):
        fn.restype = i32
    lib.screen_refine_rows.restype = i64
    return lib


def _cpu_has(flag: str) -> bool:
    """Whether /proc/cpuinfo lists `flag` (False where there is no such file)."""
    try:
        with open("/proc/cpuinfo") as info:
            return any(line.startswith("flags") and flag in line.split() for line in info)
    except OSError:
        return False

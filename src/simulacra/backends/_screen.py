"""Logits from a coarse screen, made exact where sampling can reach.

A decode step that has any sequence inside a string (where the grammar allows nearly every
token) needs that sequence's logit for all 262,144 tokens; llama.cpp gets them by reading
the whole BF16 output layer (335 MB) once per step, about 14 ms of a 60-80 ms step. The
model copy in the cache may also hold a Q4_0 copy of that layer (`_gguf.to_bf16(screen=
True)`, 94 MB), which the patched llama.cpp reads instead when asked to
(`llama_set_logit_screen`). Its logits are off by up to about 2 near the best token. But
min-p sampling keeps only tokens within T * ln(1 / MIN_P) of the best allowed logit, so
every token it could keep has a coarse logit within that window plus twice the screen's
error of the best coarse one. Those tokens (usually tens, a few thousand where the model
has no favourite) get their exact logits here, in C (`_screen.c`: a BF16 row times the
hidden state, as llama.cpp's BF16 product computes it), and sampling sees only them.

The C file is compiled on first use into the cache directory; without a C compiler the
screen is off and every row gets llama.cpp's exact logits, as before.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
from pathlib import Path

import numpy as np

from simulacra.backends._gguf import BF16, Q4_0, read_layout

# Logits added to sampling's window: a token min-p keeps may have a coarse logit this much
# further below the best coarse one than its exact logit is below the best exact one (each
# coarse logit is off by up to about 2; what matters is the two errors' difference). On
# 300 rows of a MedicalBilling run (Gemma 3 270M), the most any kept token needed was 1.60
# (the 99th percentile 1.26), the window below being min-p's, the steer's margin and any lift.
SLACK = 3.5
SOURCE = Path(__file__).with_name("_screen.c")
# The portable floor (the same as scripts/install-llama.sh's); AVX512-BF16 where the llama.cpp
# build has it (it is built with it where the CPU has it), whose dot-product instruction is
# also the one llama.cpp's BF16 product uses.
FLAGS = ["-O3", "-mavx2", "-mfma", "-shared", "-fPIC"]
BF16_FLAGS = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16"]


class Screen:
    """The exact output layer (BF16 rows, where llama.cpp holds them) and the compiled
    refinement. `refine` turns one coarse row into (exact logits, token ids)."""

    def __init__(self, lib: ctypes.CDLL, weights: int, n_vocab: int, n_embd: int) -> None:
        self._lib = lib
        self._weights = weights   # address of the (n_vocab, n_embd) BF16 token embeddings
        self.n_vocab, self.n_embd = n_vocab, n_embd
        self._ids = np.empty(n_vocab, dtype=np.int32)
        self._exact = np.empty(n_vocab, dtype=np.float32)

    @classmethod
    def load(cls, model_path: str | Path, weights: int | None) -> Screen | None:
        """The screen of a model copy that has one (a Q4_0 `output.weight` beside BF16
        token embeddings), or None: no screen in the file, or no C compiler here.
        `weights`: the address of the token embeddings in the loaded model (llama.cpp's own
        copy: a second mapping of the file would count every page it touches twice, and
        the kernel maps 64 KB around each row read: 197 MiB for 2,000 rows, measured)."""
        layout = read_layout(model_path)
        if layout is None or not weights:
            return None
        coarse, embd = layout.tensor("output.weight"), layout.tensor("token_embd.weight")
        if coarse is None or embd is None or coarse.kind != Q4_0 or embd.kind != BF16:
            return None
        lib = _compiled()
        if lib is None:
            return None
        n_embd, n_vocab = embd.dims
        return cls(lib, weights, n_vocab, n_embd)

    def refine(self, coarse: np.ndarray, mask: np.ndarray | None, hidden: np.ndarray,
               window: float) -> tuple[np.ndarray, np.ndarray]:
        """The exact logits and ids of the allowed tokens (`mask`: llguidance's bitmask, or
        None for every token) whose coarse logit is within `window` + SLACK of the best
        allowed one's. Both arrays are valid until the next call."""
        state = np.ascontiguousarray(hidden, dtype=np.float32)
        n = self._lib.screen_refine(
            coarse.ctypes.data, self.n_vocab,
            None if mask is None else np.ascontiguousarray(mask).ctypes.data,
            self._weights, state.ctypes.data, self.n_embd,
            float(window + SLACK), self._ids.ctypes.data, self._exact.ctypes.data)
        if n < 0:
            raise RuntimeError("the screen cannot handle this model's hidden size")
        return self._exact[:n], self._ids[:n]


def _compiled() -> ctypes.CDLL | None:
    """`_screen.c` compiled for this machine (once, into the cache), or None."""
    from simulacra.backends.llamacpp import has_bf16_kernels

    source = SOURCE.read_bytes()
    compiler = os.environ.get("CC", "cc")
    flags = FLAGS + (BF16_FLAGS if has_bf16_kernels() else [])
    key = hashlib.sha256(source + " ".join([compiler, *flags]).encode()).hexdigest()[:16]
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    built = home / "simulacra" / "lib" / f"screen-{key}.so"
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
    fn = lib.screen_refine
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p,
                   ctypes.c_void_p, ctypes.c_int32, ctypes.c_float, ctypes.c_void_p,
                   ctypes.c_void_p]
    fn.restype = ctypes.c_int32
    return lib

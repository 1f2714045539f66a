"""The model's output layer, read from its GGUF file, for logits over a few tokens.

A grammar often allows only a handful of next tokens: after a digit, the digits, a dot, a
comma. llama.cpp's logits cost a 262,144 x 640 matrix product per sampled token, most of a
decode step. With the hidden state instead (see scripts/llama-gemma3-hidden-state.patch),
the logits of the allowed tokens are their rows of the output matrix times that state: ten
rows for a digit instead of all of them.

Rows are read from the file and dequantized when first asked for, then kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from simulacra.backends._gguf import BF16, F16, F32, Q8_0, Q8_0_BYTES, nbytes, read_layout


class OutputLayer:
    """Rows of the output matrix (one per token), read from the file when first asked for.

    Rows are read with pread and kept dequantized (a row is 2.5 KB; the tokens that come
    up in few-token masks, digits and punctuation, are a few hundred). The file is not kept
    mapped: llama.cpp maps it already, and a second mapping would count its pages twice.
    """

    MAX_CACHED = 16384  # rows kept (40 MB at 640 wide); beyond that, rows are read each time

    def __init__(self, path: str | Path, start: int, row_bytes: int, kind: int, n_embd: int,
                 n_vocab: int, softcap: float, arch: str) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._start, self._row_bytes, self._kind = start, row_bytes, kind
        self.n_embd, self.n_vocab = n_embd, n_vocab
        self.softcap = softcap
        self.arch = arch           # general.architecture, e.g. "gemma3"
        self._slot = np.full(n_vocab, -1, dtype=np.int64)   # token -> row of _table
        self._table = np.empty((0, n_embd), dtype=np.float32)

    @classmethod
    def from_gguf(cls, path: str | Path) -> OutputLayer | None:
        """The output layer of a GGUF model, or None if its type is not one read here."""
        layout = read_layout(path)
        if layout is None:
            return None
        # Gemma ties the output layer to the token embeddings; other models may not.
        tensor = layout.tensor("output.weight") or layout.tensor("token_embd.weight")
        if tensor is None or tensor.kind not in (F32, F16, BF16, Q8_0):
            return None
        n_embd, n_vocab = tensor.dims
        arch = str(layout.meta.get("general.architecture", ""))
        softcap = float(layout.meta.get(f"{arch}.final_logit_softcapping", 0.0) or 0.0)
        return cls(path, layout.data_start + tensor.offset, nbytes(tensor) // n_vocab,
                   tensor.kind, n_embd, n_vocab, softcap, arch)

    def weights(self, tokens: np.ndarray) -> np.ndarray:
        """float32 rows (len(tokens) x n_embd) of the output matrix."""
        tokens = np.asarray(tokens)
        missing = np.unique(tokens[self._slot[tokens] < 0])
        if missing.size:
            rows = self._dequantize(np.frombuffer(b"".join(
                os.pread(self._fd, self._row_bytes, self._start + int(t) * self._row_bytes)
                for t in missing), dtype=np.uint8).reshape(missing.size, self._row_bytes))
            if len(self._table) + missing.size > self.MAX_CACHED:
                table = np.empty((len(tokens), self.n_embd), dtype=np.float32)
                known = self._slot[tokens] >= 0
                table[known] = self._table[self._slot[tokens[known]]]
                table[~known] = rows[np.searchsorted(missing, tokens[~known])]
                return table
            self._slot[missing] = np.arange(len(self._table), len(self._table) + missing.size)
            self._table = np.concatenate([self._table, rows])
        return self._table[self._slot[tokens]]

    def _dequantize(self, raw: np.ndarray) -> np.ndarray:
        n = len(raw)
        if self._kind == F32:
            return raw.view(np.float32).reshape(n, self.n_embd).copy()
        if self._kind == F16:
            return raw.view(np.float16).astype(np.float32).reshape(n, self.n_embd)
        if self._kind == BF16:
            return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(n, self.n_embd)
        blocks = raw.reshape(n, -1, Q8_0_BYTES)
        scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)
        quants = blocks[:, :, 2:].view(np.int8).astype(np.float32)
        return (quants * scale).reshape(n, self.n_embd)

    def logits(self, hidden: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The logits of `tokens` given the final (normed) hidden state."""
        out = self.weights(tokens) @ hidden
        if self.softcap:
            out = np.tanh(out / self.softcap) * self.softcap
        return out

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()

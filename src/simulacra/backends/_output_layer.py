"""The model's output layer, read from its GGUF file, for logits over a few tokens.

A grammar often allows only a handful of next tokens: after a digit, the digits, a dot, a
comma. llama.cpp's logits cost a 262,144 x 640 matrix product per sampled token, most of a
decode step. With the hidden state instead (see scripts/llama-gemma3-hidden-state.patch),
the logits of the allowed tokens are their rows of the output matrix times that state: ten
rows for a digit instead of all of them.

The file is memory-mapped and rows are dequantized when asked for, so this costs no memory
beyond the pages it touches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulacra.backends._gguf import BF16, F16, F32, Q8_0, Q8_0_BYTES, nbytes, read_layout


class OutputLayer:
    """Rows of the output matrix (one per token), dequantized to float32 on demand."""

    def __init__(self, rows: np.ndarray, kind: int, n_embd: int, softcap: float,
                 arch: str) -> None:
        self._rows = rows          # (n_vocab, bytes per row) uint8 view of the mapped file
        self._kind = kind
        self.n_embd = n_embd
        self.softcap = softcap
        self.arch = arch           # general.architecture, e.g. "gemma3"

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
        size = nbytes(tensor)
        rows = layout.bytes_of(tensor, size).reshape(n_vocab, size // n_vocab)
        arch = str(layout.meta.get("general.architecture", ""))
        softcap = float(layout.meta.get(f"{arch}.final_logit_softcapping", 0.0) or 0.0)
        return cls(rows, tensor.kind, n_embd, softcap, arch)

    def weights(self, tokens: np.ndarray) -> np.ndarray:
        """float32 rows (len(tokens) x n_embd) of the output matrix."""
        raw = np.asarray(self._rows[tokens])
        if self._kind == F32:
            return raw.view(np.float32)
        if self._kind == F16:
            return raw.view(np.float16).astype(np.float32)
        if self._kind == BF16:
            return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        blocks = raw.reshape(len(tokens), -1, Q8_0_BYTES)
        scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)
        quants = blocks[:, :, 2:].view(np.int8).astype(np.float32)
        return (quants * scale).reshape(len(tokens), self.n_embd)

    def logits(self, hidden: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The logits of `tokens` given the final (normed) hidden state."""
        out = self.weights(tokens) @ hidden
        if self.softcap:
            out = np.tanh(out / self.softcap) * self.softcap
        return out

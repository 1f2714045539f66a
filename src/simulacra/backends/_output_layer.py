"""The model's output layer, read from its GGUF file, for logits over a few tokens.

A grammar often allows only a handful of next tokens: after a digit, the digits, a dot, a
comma. llama.cpp's logits cost a 262,144 x 640 matrix product per sampled token, most of a
decode step. With the hidden state instead (see scripts/llama-gemma3-hidden-state.patch),
the logits of the allowed tokens are their rows of the output matrix times that state: ten
rows for a digit instead of all of them.

The file is memory-mapped and rows are dequantized when asked for, so this costs no memory
beyond the pages it touches. Only the output matrix's header fields and rows are read; the
rest of GGUF (the format llama.cpp loads) is skipped over.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_MAGIC = b"GGUF"
# GGUF metadata value types -> struct format of one scalar (8 = string, 9 = array)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}
_STRING, _ARRAY = 8, 9
# ggml tensor types this reader dequantizes
_F32, _F16, _Q8_0, _BF16 = 0, 1, 8, 30
_Q8_0_BLOCK = 32             # values per Q8_0 block: a float16 scale, then 32 int8
_Q8_0_BYTES = 2 + _Q8_0_BLOCK


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
        data = np.memmap(path, dtype=np.uint8, mode="r")
        buf = memoryview(data)
        if bytes(buf[:4]) != _MAGIC:
            return None
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        if version < 2:
            return None
        pos = 24
        meta: dict[str, object] = {}
        for _ in range(n_kv):
            key, pos = _read_string(buf, pos)
            (kind,) = struct.unpack_from("<I", buf, pos)
            value, pos = _read_value(buf, pos + 4, kind)
            meta[key] = value
        tensors = {}
        for _ in range(n_tensors):
            name, pos = _read_string(buf, pos)
            (n_dims,) = struct.unpack_from("<I", buf, pos)
            dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
            kind, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
            pos += 4 + 8 * n_dims + 12
            tensors[name] = (dims, kind, offset)
        align = int(meta.get("general.alignment", 32))
        start = (pos + align - 1) // align * align
        # Gemma ties the output layer to the token embeddings; other models may not.
        dims, kind, offset = tensors.get("output.weight") or tensors["token_embd.weight"]
        n_embd, n_vocab = dims
        row_bytes = {_F32: 4 * n_embd, _F16: 2 * n_embd, _BF16: 2 * n_embd,
                     _Q8_0: n_embd // _Q8_0_BLOCK * _Q8_0_BYTES}.get(kind)
        if row_bytes is None or (kind == _Q8_0 and n_embd % _Q8_0_BLOCK):
            return None
        first = start + offset
        rows = data[first:first + row_bytes * n_vocab].reshape(n_vocab, row_bytes)
        arch = meta.get("general.architecture", "")
        softcap = float(meta.get(f"{arch}.final_logit_softcapping", 0.0) or 0.0)
        return cls(rows, kind, n_embd, softcap, str(arch))

    def weights(self, tokens: np.ndarray) -> np.ndarray:
        """float32 rows (len(tokens) x n_embd) of the output matrix."""
        raw = np.asarray(self._rows[tokens])
        if self._kind == _F32:
            return raw.view(np.float32)
        if self._kind == _F16:
            return raw.view(np.float16).astype(np.float32)
        if self._kind == _BF16:
            return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        blocks = raw.reshape(len(tokens), -1, _Q8_0_BYTES)
        scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)
        quants = blocks[:, :, 2:].view(np.int8).astype(np.float32)
        return (quants * scale).reshape(len(tokens), self.n_embd)

    def logits(self, hidden: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The logits of `tokens` given the final (normed) hidden state."""
        out = self.weights(tokens) @ hidden
        if self.softcap:
            out = np.tanh(out / self.softcap) * self.softcap
        return out


def _read_string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<Q", buf, pos)
    return bytes(buf[pos + 8:pos + 8 + n]).decode("utf-8", errors="replace"), pos + 8 + n


def _read_value(buf: memoryview, pos: int, kind: int) -> tuple[object, int]:
    """One metadata value; arrays are skipped over (None), since none is needed here."""
    if kind == _STRING:
        return _read_string(buf, pos)
    if kind == _ARRAY:
        item, count = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if item in _SCALARS:
            return None, pos + count * struct.calcsize(_SCALARS[item])
        for _ in range(count):
            _, pos = _read_value(buf, pos, item)
        return None, pos
    fmt = _SCALARS[kind]
    return struct.unpack_from("<" + fmt, buf, pos)[0], pos + struct.calcsize(fmt)

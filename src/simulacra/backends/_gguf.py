"""GGUF files, the format llama.cpp loads: read the layout, and store weights in the type
llama.cpp's CPU backend multiplies fastest.

Why rewrite a model file? Gemma 3 270M Q4_K_M keeps most of its transformer weights in
Q5_0, for which llama.cpp's CPU backend has only a row-by-row kernel. Two rewrites:

- `widen_q5_0`: Q5_0 -> Q8_0, which has a batched kernel (about 4% faster per record). A
  Q5_0 block is 32 five-bit integers times one float16 scale, so it converts to a Q8_0 block
  (32 int8 times one float16 scale) exactly: the model computes the same numbers.
- `to_bf16`: Q5_0 and Q8_0 (the tied output layer too) -> BF16, for a CPU with AVX512-BF16,
  whose dot-product instruction multiplies 32 BF16 pairs at once; MedicalBilling about 1.3x
  the records/s of the Q8_0 file (docs/performance.md). Not exact: a BF16 number keeps 8
  significant bits, so a weight moves by at most 1/16 of its Q5_0 quantization step (1/2 of
  a Q8_0 step); llama.cpp then rounds activations to BF16 instead of to 8-bit blocks.

Only what these uses need is parsed: metadata values are read or skipped, tensor infos are
read, and the rest of the file is copied as it is.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

MAGIC = b"GGUF"
# metadata value types -> struct format of one scalar (8 = string, 9 = array)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}
_STRING, _ARRAY = 8, 9
# ggml tensor types
F32, F16, Q4_0, Q5_0, Q8_0, BF16 = 0, 1, 2, 6, 8, 30
BLOCK = 32                       # values per Q4_0 / Q5_0 / Q8_0 block
Q4_0_BYTES = 2 + BLOCK // 2      # float16 scale, 32 nibbles
Q5_0_BYTES = 2 + 4 + BLOCK // 2  # float16 scale, 32 high bits, 32 low nibbles
Q8_0_BYTES = 2 + BLOCK           # float16 scale, 32 int8


@dataclass
class Tensor:
    name: str
    dims: tuple[int, ...]   # fastest-varying first, as ggml orders them
    kind: int               # ggml type
    offset: int             # from the start of the data section


@dataclass
class Layout:
    data: np.ndarray               # the whole file, memory-mapped, as uint8
    meta: dict[str, object]        # metadata; arrays are None (skipped)
    tensors: list[Tensor]
    info_start: int                # where the tensor infos begin (the metadata ends)
    data_start: int
    alignment: int

    def tensor(self, name: str) -> Tensor | None:
        return next((t for t in self.tensors if t.name == name), None)

    def bytes_of(self, tensor: Tensor, size: int) -> np.ndarray:
        start = self.data_start + tensor.offset
        return self.data[start:start + size]


def read_layout(path: str | Path) -> Layout | None:
    """The file's metadata and tensor table, or None if it is not a GGUF v2+ file."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(data)
    if len(buf) < 24 or bytes(buf[:4]) != MAGIC:
        return None
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version < 2:
        return None
    pos = 24
    meta: dict[str, object] = {}
    for _ in range(n_kv):
        key, pos = _read_string(buf, pos)
        (kind,) = struct.unpack_from("<I", buf, pos)
        meta[key], pos = _read_value(buf, pos + 4, kind)
    info_start = pos
    tensors = []
    for _ in range(n_tensors):
        name, pos = _read_string(buf, pos)
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
        kind, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
        pos += 4 + 8 * n_dims + 12
        tensors.append(Tensor(name, tuple(dims), kind, offset))
    alignment = int(meta.get("general.alignment", 32))
    return Layout(data, meta, tensors, info_start, _align(pos, alignment), alignment)


def nbytes(tensor: Tensor) -> int | None:
    """Size in bytes of a tensor of a type this module knows, else None."""
    n = int(np.prod(tensor.dims))
    per = {F32: 4 * n, F16: 2 * n, BF16: 2 * n, Q8_0: n // BLOCK * Q8_0_BYTES,
           Q5_0: n // BLOCK * Q5_0_BYTES, Q4_0: n // BLOCK * Q4_0_BYTES}
    return per.get(tensor.kind)


def q5_0_integers(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q5_0 blocks (uint8, 22 bytes each) as (float16 scales (n, 1), integers (n, 32)).

    A Q5_0 value j is d * (q_j - 16), q_j five bits: the low four in nibble j of the 16
    nibble bytes (low nibbles for j < 16, high for j >= 16) and the fifth in bit j of qh.
    """
    blocks = raw.reshape(-1, Q5_0_BYTES)
    qh = blocks[:, 2:6].copy().view("<u4")                       # (n, 1)
    nibbles = blocks[:, 6:]
    low = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1)  # (n, 32)
    high = (qh >> np.arange(BLOCK, dtype=np.uint32)) & 1
    values = (low.astype(np.int16) | (high.astype(np.int16) << 4)) - 16
    return blocks[:, :2].copy().view(np.float16), values


def q5_0_to_q8_0(raw: np.ndarray) -> np.ndarray:
    """Q5_0 blocks as Q8_0 blocks (34 bytes each), exactly: same scale, same integers."""
    scales, values = q5_0_integers(raw)
    out = np.empty((values.shape[0], Q8_0_BYTES), dtype=np.uint8)
    out[:, :2] = scales.view(np.uint8)
    out[:, 2:] = values.astype(np.int8).view(np.uint8)
    return out.reshape(-1)


def to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 -> BF16 bits (uint16), rounded to nearest, ties to even, as ggml does."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def dequantized(raw: np.ndarray, kind: int) -> Iterator[np.ndarray]:
    """Q5_0, Q8_0 or BF16 data as float32 values, a chunk at a time so that the float32
    values of a 262k-row output layer never sit in memory all at once."""
    if kind == BF16:
        for start in range(0, raw.size, 2 * BLOCK * 65536):
            bits = raw[start:start + 2 * BLOCK * 65536].view(np.uint16).astype(np.uint32)
            yield (bits << 16).view(np.float32)
        return
    size = Q5_0_BYTES if kind == Q5_0 else Q8_0_BYTES
    for start in range(0, raw.size, size * 65536):
        chunk = raw[start:start + size * 65536]
        if kind == Q5_0:
            scales, ints = q5_0_integers(chunk)
        else:
            blocks = chunk.reshape(-1, Q8_0_BYTES)
            scales, ints = blocks[:, :2].copy().view(np.float16), blocks[:, 2:].view(np.int8)
        yield (scales.astype(np.float32) * ints).reshape(-1)


def blocks_to_bf16(raw: np.ndarray, kind: int) -> Iterator[np.ndarray]:
    """Q5_0 or Q8_0 blocks as BF16 values (uint8 bytes), a chunk at a time."""
    for values in dequantized(raw, kind):
        yield to_bfloat16(values).view(np.uint8)


def widen_q5_0(src: str | Path, dst: str | Path) -> bool:
    """Write `src` to `dst` with every Q5_0 tensor stored as Q8_0; False (and nothing
    written) when `src` has no Q5_0 tensor. Other tensors are copied byte for byte."""
    return _rewrite(src, dst, {Q5_0: (Q8_0, lambda raw: [q5_0_to_q8_0(raw)])})


def to_bf16(src: str | Path, dst: str | Path) -> bool:
    """Write `src` to `dst` with every Q5_0 and Q8_0 tensor stored as BF16; False (and
    nothing written) when it has none. Other tensors (Q4_K, Q6_K, norms) are copied."""
    return _rewrite(src, dst, {Q5_0: (BF16, lambda raw: blocks_to_bf16(raw, Q5_0)),
                               Q8_0: (BF16, lambda raw: blocks_to_bf16(raw, Q8_0))})


# ggml type -> (the type to store, bytes of the old type -> chunks of bytes of the new one)
Convert = dict[int, tuple[int, Callable[[np.ndarray], Iterable[np.ndarray]]]]


def _rewrite(src: str | Path, dst: str | Path, convert: Convert) -> bool:
    """Copy a GGUF file, storing the tensors of each type in `convert` as its new type."""
    layout = read_layout(src)
    if layout is None or not any(t.kind in convert for t in layout.tensors):
        return False
    align = layout.alignment
    order = sorted(layout.tensors, key=lambda t: t.offset)
    ends = [t.offset for t in order[1:]] + [len(layout.data) - layout.data_start]
    # (tensor, bytes to read, bytes to write): a converted tensor exactly, others with padding
    spans = []
    for t, end in zip(order, ends, strict=True):
        if t.kind in convert:
            new = replace(t, kind=convert[t.kind][0])
            spans.append((t, nbytes(t), _align(nbytes(new), align)))
        else:
            spans.append((t, end - t.offset, end - t.offset))
    offsets, at = {}, 0
    for t, _, size in spans:
        offsets[t.name], at = at, at + size
    infos = [_info(t, convert[t.kind][0] if t.kind in convert else t.kind, offsets[t.name])
             for t in layout.tensors]   # the table keeps the file's order
    head = bytes(layout.data[:layout.info_start]) + b"".join(infos)
    tmp = Path(dst).with_name(f".{Path(dst).name}.{os.getpid()}.partial")
    with open(tmp, "wb") as out:
        out.write(head + b"\0" * (_align(len(head), align) - len(head)))
        for t, size, new_size in spans:
            raw = layout.bytes_of(t, size)
            _write(out, convert[t.kind][1](raw) if t.kind in convert else [raw], new_size)
    os.replace(tmp, dst)
    return True


def _write(out, chunks: Iterable[np.ndarray], size: int) -> None:
    """A tensor's bytes, chunk by chunk, padded with zeros to `size`."""
    written = 0
    for chunk in chunks:
        out.write(memoryview(np.ascontiguousarray(chunk)))
        written += chunk.size
    out.write(b"\0" * (size - written))


def _info(t: Tensor, kind: int, offset: int) -> bytes:
    """A tensor's entry in the file's table: name, dims, type, offset in the data."""
    name = t.name.encode()
    return (struct.pack("<Q", len(name)) + name + struct.pack("<I", len(t.dims))
            + struct.pack(f"<{len(t.dims)}Q", *t.dims) + struct.pack("<IQ", kind, offset))


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


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
        if item == _STRING:   # a vocabulary: 262k strings for Gemma, stepped over unread
            length = struct.Struct("<Q").unpack_from
            for _ in range(count):
                pos += 8 + length(buf, pos)[0]
            return None, pos
        for _ in range(count):
            _, pos = _read_value(buf, pos, item)
        return None, pos
    fmt = _SCALARS[kind]
    return struct.unpack_from("<" + fmt, buf, pos)[0], pos + struct.calcsize(fmt)

"""The CPU kernels scripts/llama-cpu-kernels.patch rewrites, and the repacked BF16 product of
scripts/llama-bf16-repack.patch, run through the installed llama.cpp build's own ggml
(ctypes) and checked against numpy: the BF16 product's tiles (with the FP32 -> BF16
conversion of its activations), GEGLU and the RMS norm. A column or lane mixed up in a
16-wide loop would be off by whole values; the conversion, GEGLU's range branches and the
repacked product (against upstream's) are checked bit for bit.
"""

from __future__ import annotations

import ctypes
import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from simulacra.backends._gguf import to_bfloat16
from simulacra.backends.llamacpp import has_bf16_kernels

llama_cpp = pytest.importorskip("llama_cpp")

# where llama_cpp loads its libraries from (the same variable it reads)
LIB = Path(os.environ.get("LLAMA_CPP_LIB_PATH") or Path(llama_cpp.__file__).parent / "lib")
F32, BF16 = 0, 30   # ggml_type
GELU_A, SQRT_2_OVER_PI = np.float32(0.044715), np.float32(0.7978845608028654)


class _Init(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p),
                ("no_alloc", ctypes.c_bool)]


class Ggml:
    """Just enough of ggml's C API to build a one-op graph and run it on the CPU."""

    def __init__(self) -> None:
        base = ctypes.CDLL(str(LIB / "libggml-base.so"))
        cpu = ctypes.CDLL(str(LIB / "libggml-cpu.so"))
        p, i64 = ctypes.c_void_p, ctypes.c_int64
        for name, args in {"ggml_new_tensor_1d": [p, ctypes.c_int, i64],
                           "ggml_new_tensor_2d": [p, ctypes.c_int, i64, i64],
                           "ggml_mul_mat": [p, p, p], "ggml_cpy": [p, p, p],
                           "ggml_geglu_split": [p, p, p], "ggml_mul": [p, p, p],
                           "ggml_rms_norm": [p, p, ctypes.c_float], "ggml_new_graph": [p],
                           "ggml_get_data": [p]}.items():
            fn = getattr(base, name)
            fn.argtypes, fn.restype = args, p
        base.ggml_init.argtypes, base.ggml_init.restype = [_Init], p
        for name, args, res in [("ggml_backend_reg_get_proc_address", [p, ctypes.c_char_p], p),
                                ("ggml_backend_reg_dev_get", [p, ctypes.c_size_t], p),
                                ("ggml_backend_buft_name", [p], ctypes.c_char_p),
                                ("ggml_backend_alloc_ctx_tensors_from_buft", [p, p], p),
                                ("ggml_backend_tensor_set", [p, p, ctypes.c_size_t, ctypes.c_size_t], None),
                                ("ggml_backend_buffer_free", [p], None)]:
            fn = getattr(base, name)
            fn.argtypes, fn.restype = args, res
        cpu.ggml_backend_cpu_reg.restype = p
        base.ggml_build_forward_expand.argtypes = [p, p]
        base.ggml_free.argtypes = [p]
        cpu.ggml_graph_compute_with_ctx.argtypes = [p, p, ctypes.c_int]
        self.base, self.cpu = base, cpu
        self.ctx = base.ggml_init(_Init(64 << 20, None, False))
        self._contexts: list[int] = []
        self._buffers: list[int] = []

    def tensor(self, values: np.ndarray, kind: int = F32) -> int:
        """A ggml tensor holding `values` (2-D; rows are ggml's ne1). BF16 takes uint16 bits."""
        rows, cols = values.shape
        t = self.base.ggml_new_tensor_2d(self.ctx, kind, cols, rows)
        self.view(t, values.shape, values.dtype)[:] = values
        return t

    def repacked(self, values: np.ndarray, kind: int) -> int:
        """Like `tensor`, in the CPU backend's repacking buffer (as llama.cpp loads weights
        whose type it repacks); its set_tensor stores `values` repacked."""
        reg = self.cpu.ggml_backend_cpu_reg()
        extra_bufts = ctypes.CFUNCTYPE(ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p)(
            self.base.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_dev_get_extra_bufts"))
        bufts = extra_bufts(self.base.ggml_backend_reg_dev_get(reg, 0))
        names = {}
        for i in itertools.count():
            if not bufts[i]:
                break
            names[self.base.ggml_backend_buft_name(bufts[i])] = bufts[i]
        ctx = self.base.ggml_init(_Init(1 << 20, None, True))
        self._contexts.append(ctx)
        rows, cols = values.shape
        t = self.base.ggml_new_tensor_2d(ctx, kind, cols, rows)
        buffer = self.base.ggml_backend_alloc_ctx_tensors_from_buft(ctx, names[b"CPU_REPACK"])
        self._buffers.append(buffer)
        data = np.ascontiguousarray(values)
        self.base.ggml_backend_tensor_set(t, data.ctypes.data, 0, data.nbytes)
        return t

    def view(self, t: int, shape: tuple[int, ...], dtype) -> np.ndarray:
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        buffer = (ctypes.c_char * size).from_address(self.base.ggml_get_data(t))
        return np.frombuffer(buffer, dtype=dtype).reshape(shape)

    def run(self, out: int, threads: int = 2) -> None:
        graph = self.base.ggml_new_graph(self.ctx)
        self.base.ggml_build_forward_expand(graph, out)
        assert self.cpu.ggml_graph_compute_with_ctx(self.ctx, graph, threads) == 0

    def close(self) -> None:
        for buffer in self._buffers:
            self.base.ggml_backend_buffer_free(buffer)
        for ctx in [*self._contexts, self.ctx]:
            self.base.ggml_free(ctx)


@pytest.fixture
def ggml():
    g = Ggml()
    yield g
    g.close()


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """ggml's FP32 -> BF16: round to nearest even (`to_bfloat16`); a NaN keeps its top bits,
    made quiet."""
    u = x.astype(np.float32).view(np.uint32)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, ((u >> 16) | 64).astype(np.uint16), to_bfloat16(x))


def from_bf16_bits(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def test_fp32_to_bf16_rounds_every_kind_of_value_as_ggml_does(ggml):
    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -3e-39, 1.0039062, 3.4e38,
                        -1.00390625, 1.01171875, 2.0 ** -126, 65504.0], dtype=np.float32)
    bits = rng.integers(0, 2 ** 32, size=5000, dtype=np.uint64).astype(np.uint32)
    values = np.concatenate([special, bits.view(np.float32)])[:4093]   # not a multiple of 16
    source = ggml.tensor(values[None, :])
    target = ggml.base.ggml_new_tensor_2d(ggml.ctx, BF16, len(values), 1)
    ggml.run(ggml.base.ggml_cpy(ggml.ctx, source, target))
    got = ggml.view(target, (len(values),), np.uint16)
    assert np.array_equal(got, to_bf16_bits(values))


@pytest.mark.parametrize("tokens", [1, 6, 13, 40])
def test_bf16_product_matches_numpy_in_every_row_and_column(ggml, tokens):
    rng = np.random.default_rng(tokens)
    rows, k = 64, 640
    weights = to_bf16_bits(rng.normal(size=(rows, k)).astype(np.float32))
    x = rng.normal(size=(tokens, k)).astype(np.float32)
    out = ggml.base.ggml_mul_mat(ggml.ctx, ggml.tensor(weights, BF16), ggml.tensor(x))
    ggml.run(out)
    got = ggml.view(out, (tokens, rows), np.float32)
    # ggml rounds the activations to BF16 before the product, and sums in float32
    want = from_bf16_bits(to_bf16_bits(x)).astype(np.float64) @ \
        from_bf16_bits(weights).astype(np.float64).T
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.skipif(not has_bf16_kernels(), reason="the repacked BF16 product needs AVX512-BF16")
@pytest.mark.parametrize("rows", [32, 256])
@pytest.mark.parametrize("tokens", [1, 5, 6, 7, 13, 40])
def test_repacked_bf16_product_gives_upstream_bits(ggml, rows, tokens):
    """Weights of 16-row blocks in the repacking buffer: each output the same float as the
    plain product of the same weights (tinyBLAS; for one token ggml_vec_dot_bf16), in every
    row and every tile size (1 to 6 tokens)."""
    rng = np.random.default_rng(rows + tokens)
    k = 640
    weights = to_bf16_bits(rng.normal(size=(rows, k)).astype(np.float32))
    x = ggml.tensor(rng.normal(size=(tokens, k)).astype(np.float32))
    plain = ggml.base.ggml_mul_mat(ggml.ctx, ggml.tensor(weights, BF16), x)
    repacked = ggml.repacked(weights, BF16)
    packed = ggml.base.ggml_mul_mat(ggml.ctx, repacked, x)
    # stored repacked: block b, phase j, chunk c holds rows 16b..16b+15's values 32c+2j, +1
    stored = ggml.view(repacked, (rows * k,), np.uint16)
    layout = weights.reshape(rows // 16, 16, k // 32, 16, 2).transpose(0, 3, 2, 1, 4)
    assert np.array_equal(stored, layout.reshape(-1))
    ggml.run(plain)
    ggml.run(packed)
    want = ggml.view(plain, (tokens, rows), np.float32)
    got = ggml.view(packed, (tokens, rows), np.float32)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert np.abs(got).min() > 0   # every output written


def gelu_table_value(x: np.ndarray) -> np.ndarray:
    """ggml's FP16-table GELU of x: x rounded to FP16, its tanh GELU rounded to FP16."""
    f = x.astype(np.float16).astype(np.float32)
    inner = SQRT_2_OVER_PI * f * (np.float32(1) + GELU_A * f * f)
    gelu = np.float32(0.5) * f * (np.float32(1) + np.tanh(inner, dtype=np.float32))
    return gelu.astype(np.float16).astype(np.float32)


def test_geglu_keeps_its_range_branches_and_table_values(ggml):
    rng = np.random.default_rng(3)
    n = 2048 + 7
    x = (rng.uniform(-1, 1, size=(3, n)) * np.array([[30.0], [6.0], [1.0]])).astype(np.float32)
    x[0, :6] = [-10.0, 10.0, -10.5, 10.5, 0.0, -0.0]
    g = rng.normal(size=(3, n)).astype(np.float32)
    out = ggml.base.ggml_geglu_split(ggml.ctx, ggml.tensor(x), ggml.tensor(g))
    ggml.run(out)
    got = ggml.view(out, x.shape, np.float32)
    small, big = x <= -10, x >= 10
    assert np.array_equal(got[small], np.zeros(small.sum(), np.float32))
    assert np.array_equal(got[big], x[big] * g[big])
    middle = ~small & ~big
    np.testing.assert_allclose(got[middle], (gelu_table_value(x) * g)[middle],
                               rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("width", [256, 640, 100])
def test_rms_norm_matches_numpy(ggml, width):
    rng = np.random.default_rng(width)
    x = (rng.normal(size=(9, width)) * rng.uniform(1e-3, 1e3, size=(9, 1))).astype(np.float32)
    x[0, ::7] *= 1e-5    # values far below the rest, where a float sum would lose them
    eps = 1e-6
    out = ggml.base.ggml_rms_norm(ggml.ctx, ggml.tensor(x), ctypes.c_float(eps))
    ggml.run(out)
    got = ggml.view(out, x.shape, np.float32)
    x64 = x.astype(np.float64)
    want = x64 / np.sqrt((x64 ** 2).mean(axis=1, keepdims=True) + eps)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)

"""GGUF rewriting: Q5_0 blocks become Q8_0 blocks with the same values, or BF16 values within
BF16's rounding; the rewritten models compute what the shipped one does (exactly, or nearly)."""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.backends._gguf import (
    BF16,
    Q5_0,
    Q5_0_BYTES,
    Q8_0,
    blocks_to_bf16,
    q5_0_to_q8_0,
    read_layout,
    to_bf16,
    to_bfloat16,
    widen_q5_0,
)


def _q5_0_block(scale: float, q: np.ndarray) -> bytes:
    """One Q5_0 block as ggml lays it out: scale, the 32 fifth bits, then nibble pairs."""
    qh = sum(int(q[j] >> 4) << j for j in range(32))
    nibbles = bytes(int(q[j] & 0x0F) | int(q[j + 16] & 0x0F) << 4 for j in range(16))
    return np.float16(scale).tobytes() + qh.to_bytes(4, "little") + nibbles


def test_q5_0_blocks_convert_exactly():
    rng = np.random.default_rng(1)
    qs = rng.integers(0, 32, size=(3, 32))
    qs[0, :] = [0, 31] * 16                       # the extremes, -16 and +15
    scales = [0.0123, 0.5, 7.0]
    raw = np.frombuffer(b"".join(_q5_0_block(d, q) for d, q in zip(scales, qs, strict=True)),
                        dtype=np.uint8)
    assert raw.size == 3 * Q5_0_BYTES
    out = q5_0_to_q8_0(raw).reshape(3, 34)
    for row, d, q in zip(out, scales, qs, strict=True):
        assert row[:2].view(np.float16)[0] == np.float16(d)
        np.testing.assert_array_equal(row[2:].view(np.int8), q - 16)


def _bf16_values(raw: np.ndarray, kind: int) -> np.ndarray:
    bits = np.concatenate(list(blocks_to_bf16(raw, kind))).view(np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def test_bfloat16_rounds_to_nearest_even():
    exact = np.array([1.0, -2.5, 0.0, 384.0], np.float32)          # 8 significant bits or fewer
    np.testing.assert_array_equal(to_bfloat16(exact), [0x3F80, 0xC020, 0x0000, 0x43C0])
    # 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even one, 1.0
    assert to_bfloat16(np.float32(1 + 2**-8))[()] == 0x3F80
    assert to_bfloat16(np.float32(1 + 3 * 2**-8))[()] == 0x3F82   # tie, up to the even one
    assert to_bfloat16(np.float32(1 + 2**-8 + 2**-20))[()] == 0x3F81  # past halfway: up


def test_q5_0_and_q8_0_blocks_become_bf16_within_a_rounding():
    rng = np.random.default_rng(2)
    qs = rng.integers(0, 32, size=(70_000, 32))   # more blocks than one conversion chunk
    scales = rng.uniform(0.001, 2.0, size=70_000)
    scales[:10] = 0.5                             # d * q fits in 8 bits: exact
    q5 = np.frombuffer(b"".join(_q5_0_block(d, q) for d, q in zip(scales[:300], qs[:300],
                                                                     strict=True)), np.uint8)
    want = (np.float16(scales[:300]).astype(np.float32)[:, None] * (qs[:300] - 16)).reshape(-1)
    got = _bf16_values(q5, Q5_0)
    assert np.all(np.abs(got - want) <= np.abs(want) * 2**-8)
    np.testing.assert_array_equal(got[:320], want[:320])

    q8 = np.empty((70_000, 34), np.uint8)
    q8[:, :2] = np.float16(scales)[:, None].view(np.uint8)
    q8[:, 2:] = (qs * 8 - 128).astype(np.int8).view(np.uint8)
    want = (np.float16(scales).astype(np.float32)[:, None] * (qs * 8 - 128)).reshape(-1)
    got = _bf16_values(q8.reshape(-1), Q8_0)
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= np.abs(want) * 2**-8)


def _next_token_logits(path) -> np.ndarray:
    """llama.cpp's logits for the token after a fixed prompt, on a model file."""
    from simulacra.backends._decode import BatchDecoder

    dec = BatchDecoder(str(path), n_seq=1, n_ctx=256, n_threads=2, few_token_logits=False)
    try:
        tokens = dec.tokenize('Medical billing: {"patient_name": "')
        dec._eval([(None, i, t, i == len(tokens) - 1) for i, t in enumerate(tokens)], 0)
        ptr = dec._ll.llama_get_logits_ith(dec.ctx.ctx, len(tokens) - 1)
        return np.ctypeslib.as_array(ptr, shape=(dec.n_vocab,)).copy()
    finally:
        dec.close()


@pytest.mark.embedded
def test_widened_model_matches_the_shipped_one(tmp_path):
    from simulacra.backends.llamacpp import default_model_path

    src = default_model_path()
    dst = tmp_path / "widened.gguf"
    assert widen_q5_0(src, dst)
    before, after = read_layout(src), read_layout(dst)
    assert [t.name for t in before.tensors] == [t.name for t in after.tensors]
    kinds = {t.name: t.kind for t in after.tensors}
    assert any(t.kind == Q5_0 for t in before.tensors)
    assert all(kinds[t.name] == (Q8_0 if t.kind == Q5_0 else t.kind) for t in before.tensors)

    shipped, widened = _next_token_logits(src), _next_token_logits(dst)
    # same weights; a different kernel may only sum in another order
    np.testing.assert_allclose(widened, shipped, atol=2e-3)
    assert np.argsort(widened)[-20:].tolist() == np.argsort(shipped)[-20:].tolist()


@pytest.mark.embedded
def test_bf16_model_predicts_what_the_shipped_one_does(tmp_path):
    """BF16 rounds each weight by at most 1/16 of its Q5_0 step, and llama.cpp rounds the
    activations to BF16 instead of 8-bit blocks: the next-token distribution moves a little
    (against float32 activations the BF16 file is as close as the shipped one, see
    docs/performance.md), its favourites do not."""
    from simulacra.backends.llamacpp import default_model_path

    src = default_model_path()
    dst = tmp_path / "bf16.gguf"
    assert to_bf16(src, dst)
    before, after = read_layout(src), read_layout(dst)
    kinds = {t.name: t.kind for t in after.tensors}
    assert kinds["token_embd.weight"] == BF16
    assert all(kinds[t.name] == (BF16 if t.kind in (Q5_0, Q8_0) else t.kind)
               for t in before.tensors)
    probs = []
    for path in (src, dst):
        logits = _next_token_logits(path).astype(np.float64)
        p = np.exp(logits - logits.max())
        probs.append(p / p.sum())
    shipped, bf16 = probs
    assert 0.5 * np.abs(shipped - bf16).sum() < 0.1           # total variation
    # the same favourite and the same five best; within them, tokens a tenth of a logit apart
    # may swap places
    assert int(np.argmax(bf16)) == int(np.argmax(shipped))
    assert set(np.argsort(bf16)[-5:].tolist()) == set(np.argsort(shipped)[-5:].tolist())


@pytest.mark.embedded
def test_the_backend_makes_the_copy_once_and_replaces_a_stale_one(tmp_path, monkeypatch):
    import os
    import shutil

    from simulacra.backends.llamacpp import default_model_path, fast_weights, has_bf16_kernels

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "model.gguf"
    shutil.copy(default_model_path(), model)
    first = fast_weights(model)
    assert first != model and first.is_file()
    # the type this build multiplies fastest: BF16 with AVX512-BF16, else Q5_0 widened
    kinds = {t.kind for t in read_layout(first).tensors}
    assert (BF16 in kinds) == has_bf16_kernels() and Q5_0 not in kinds
    written = first.stat().st_mtime_ns
    assert fast_weights(model) == first and first.stat().st_mtime_ns == written  # not rewritten
    os.utime(model, ns=(1, 1))            # the model file changed: a new copy, the old one gone
    second = fast_weights(model)
    assert second != first and second.is_file() and not first.exists()
    assert [p.name for p in second.parent.glob("*.gguf")] == [second.name]

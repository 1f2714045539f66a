"""GGUF rewriting: Q5_0 blocks become Q8_0 blocks with the same values, and the rewritten
model computes what the shipped one does."""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.backends._gguf import Q5_0, Q5_0_BYTES, Q8_0, q5_0_to_q8_0, read_layout, widen_q5_0


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


@pytest.mark.embedded
def test_widened_model_matches_the_shipped_one(tmp_path):
    from simulacra.backends._decode import BatchDecoder
    from simulacra.backends.llamacpp import default_model_path

    src = default_model_path()
    dst = tmp_path / "widened.gguf"
    assert widen_q5_0(src, dst)
    before, after = read_layout(src), read_layout(dst)
    assert [t.name for t in before.tensors] == [t.name for t in after.tensors]
    kinds = {t.name: t.kind for t in after.tensors}
    assert any(t.kind == Q5_0 for t in before.tensors)
    assert all(kinds[t.name] == (Q8_0 if t.kind == Q5_0 else t.kind) for t in before.tensors)

    tokens = None
    logits = []
    for path in (src, dst):
        dec = BatchDecoder(str(path), n_seq=1, n_ctx=256, n_threads=2, few_token_logits=False)
        try:
            tokens = dec.tokenize('Medical billing: {"patient_name": "')
            dec._eval([(None, i, t, i == len(tokens) - 1) for i, t in enumerate(tokens)], 0)
            ptr = dec._ll.llama_get_logits_ith(dec.ctx.ctx, len(tokens) - 1)
            logits.append(np.ctypeslib.as_array(ptr, shape=(dec.n_vocab,)).copy())
        finally:
            dec.close()
    shipped, widened = logits
    # same weights; a different kernel may only sum in another order
    np.testing.assert_allclose(widened, shipped, atol=2e-3)
    assert np.argsort(widened)[-20:].tolist() == np.argsort(shipped)[-20:].tolist()


@pytest.mark.embedded
def test_the_backend_makes_the_copy_once_and_replaces_a_stale_one(tmp_path, monkeypatch):
    import os
    import shutil

    from simulacra.backends.llamacpp import default_model_path, fast_weights

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "model.gguf"
    shutil.copy(default_model_path(), model)
    first = fast_weights(model)
    assert first != model and first.is_file()
    written = first.stat().st_mtime_ns
    assert fast_weights(model) == first and first.stat().st_mtime_ns == written  # not rewritten
    os.utime(model, ns=(1, 1))            # the model file changed: a new copy, the old one gone
    second = fast_weights(model)
    assert second != first and second.is_file() and not first.exists()
    assert [p.name for p in second.parent.iterdir()] == [second.name]

"""Logits from the hidden state: the GGUF reader's rows, and llama.cpp's own logits matched."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from simulacra.backends._output_layer import OutputLayer


def _gguf(path, kind: int, rows: np.ndarray, payload: bytes, arch: str = "testarch") -> None:
    """A minimal GGUF v3 file: two metadata keys (one an array to skip) and one tensor."""
    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    n_vocab, n_embd = rows.shape
    meta = string("general.architecture") + struct.pack("<I", 8) + string(arch)
    meta += string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + string("a") + string("b")
    info = string("token_embd.weight") + struct.pack("<I2QIQ", 2, n_embd, n_vocab, kind, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + meta + info
    head += b"\0" * (-len(head) % 32)
    path.write_bytes(head + payload)


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16", "q8_0"])
def test_rows_are_read_and_dequantized(tmp_path, kind):
    rng = np.random.default_rng(0)
    rows = rng.normal(0, 0.1, (5, 64)).astype(np.float32)
    if kind == "f32":
        code, payload, expected = 0, rows.tobytes(), rows
    elif kind == "f16":
        code, payload, expected = 1, rows.astype(np.float16).tobytes(), rows.astype(np.float16)
    elif kind == "bf16":
        bits = (rows.view(np.uint32) >> 16).astype(np.uint16)
        code, payload = 30, bits.tobytes()
        expected = (bits.astype(np.uint32) << 16).view(np.float32)
    else:
        blocks = rows.reshape(5, 2, 32)
        scale = (np.abs(blocks).max(axis=2, keepdims=True) / 127).astype(np.float16)
        quants = np.round(blocks / scale.astype(np.float32)).astype(np.int8)
        payload = b"".join(s.tobytes() + q.tobytes()
                           for s, q in zip(scale.reshape(-1), quants.reshape(-1, 32), strict=True))
        code, expected = 8, (quants * scale.astype(np.float32)).reshape(5, 64)
    path = tmp_path / "m.gguf"
    _gguf(path, code, rows, payload)
    layer = OutputLayer.from_gguf(path)
    assert layer.arch == "testarch" and layer.n_embd == 64
    np.testing.assert_allclose(layer.weights(np.array([3, 0])), np.asarray(expected, np.float32)[[3, 0]],
                               rtol=0, atol=1e-6)
    # past the cache's size, rows are still right (read each time, not kept)
    small = OutputLayer.from_gguf(path)
    small.MAX_CACHED = 2
    for tokens in ([4, 1], [3, 0, 1, 4, 3], [2]):
        np.testing.assert_allclose(small.weights(np.array(tokens)),
                                   np.asarray(expected, np.float32)[tokens], rtol=0, atol=1e-6)
    hidden = rng.normal(size=64).astype(np.float32)
    np.testing.assert_allclose(layer.logits(hidden, np.array([1, 4])),
                               np.asarray(expected, np.float32)[[1, 4]] @ hidden, rtol=1e-5)


def test_unknown_type_or_file_is_declined(tmp_path):
    path = tmp_path / "q4.gguf"
    _gguf(path, 12, np.zeros((2, 256), np.float32), b"\0" * 512)   # Q4_K: not read here
    assert OutputLayer.from_gguf(path) is None
    other = tmp_path / "x.gguf"
    other.write_bytes(b"not a gguf file at all, just text" * 2)
    assert OutputLayer.from_gguf(other) is None


@pytest.mark.embedded
def test_hidden_state_logits_match_llama_cpp_on_the_real_model():
    """The same context decoded twice: once for llama.cpp's logits, once for the hidden state
    (the patched build's embeddings mode). The rows times the state give the same numbers."""
    from simulacra.backends._decode import BatchDecoder
    from simulacra.backends.llamacpp import default_model_path

    dec = BatchDecoder(str(default_model_path()), n_seq=2, n_ctx=512, n_threads=2)
    try:
        assert dec._output is not None, "the Gemma 3 GGUF's output layer was not read"
        tokens = dec.tokenize('{"patient_id": 4')
        *context, last = tokens
        dec._eval([(None, i, t, False) for i, t in enumerate(context)], 0)
        dec._ll.llama_memory_seq_cp(dec.ctx.memory, 0, 1, -1, -1)
        dec._eval([(None, len(context), last, True)], 0)
        full = np.ctypeslib.as_array(dec._ll.llama_get_logits_ith(dec.ctx.ctx, 0),
                                     shape=(dec.n_vocab,)).copy()
        dec._eval([(None, len(context), last, True)], 1, hidden=True)
        state = np.ctypeslib.as_array(dec._ll.llama_get_embeddings_ith(dec.ctx.ctx, 0),
                                      shape=(dec._output.n_embd,)).copy()
        digits = np.array([dec.tokenize(str(d))[1] for d in range(10)])
        ours = dec._output.logits(state, digits)
    finally:
        dec.close()
    # llama.cpp quantizes the state to 8 bits for its product; we keep float32
    np.testing.assert_allclose(ours, full[digits], atol=0.15)
    assert np.argmax(ours) == np.argmax(full[digits])
    assert np.corrcoef(ours, full[digits])[0, 1] > 0.99


def test_one_call_a_step_gives_both_kinds_of_row_on_the_real_model():
    """The patched build's llama_set_logit_rows: in one step, a sequence that may write any
    token gets llama.cpp's logits and one with few choices gets logits from its hidden state,
    the same as each would get alone; a step longer than a micro-batch is split so that a
    sequence's earlier tokens are decoded first."""
    from simulacra.backends._decode import N_UBATCH, BatchDecoder, _Seq
    from simulacra.backends.base import Request
    from simulacra.backends.llamacpp import default_model_path

    dec = BatchDecoder(str(default_model_path()), n_seq=3, n_ctx=1024, n_threads=2)
    try:
        if dec._set_logit_rows is None:
            pytest.fail("this llama-cpp-python build lacks llama_set_logit_rows "
                        "(scripts/install-llama.sh applies the patch)")
        dec.warm_up()
        name = dec.tokenize('{"patient_name": "Ann')             # any token may follow
        number = dec.tokenize('{"patient_id": 4')                   # a digit follows
        long = dec.tokenize(" ".join(["word"] * (N_UBATCH + 10)) + ', "x": "')
        digits = np.array([dec.tokenize(str(d))[1] for d in range(10)])

        def seq(slot, tokens, choices):
            s = _Seq(slot=slot, request=Request(prompt=""), matcher=None,
                     rng=np.random.default_rng(0))
            s.pending, s.choices = list(tokens), choices
            return s

        step = [seq(0, name, None), seq(1, number, digits), seq(2, long, None)]
        dec._eval_step(step)
        together = [np.array(s.logits, dtype=np.float64) for s in step]

        # each alone, the way a build without the call decodes: logits mode, then the
        # hidden state in a second call
        dec._set_logit_rows = None
        alone = []
        for tokens, choices in ((name, None), (number, digits), (long, None)):
            for slot in range(3):
                dec._ll.llama_memory_seq_rm(dec.ctx.memory, slot, -1, -1)
            s = seq(0, tokens, choices)
            dec._decode([s])
            alone.append(np.array(s.logits, dtype=np.float64))
    finally:
        dec.close()
    assert together[1].shape == (10,) and together[0].shape == (dec.n_vocab,)
    # the same up to llama.cpp's rounding of activations to BF16, which depends on how
    # many rows a product has (a wrong row is off by 10 or more); tokens closer than that
    # rounding (two digits 0.01 apart) may swap places
    for a, b in zip(together, alone, strict=True):
        top = np.argsort(b)[-5:]
        np.testing.assert_allclose(a[top], b[top], atol=0.5)
        assert b[np.argmax(a)] >= b.max() - 0.5


def test_rows_that_need_logits_in_an_earlier_call_are_kept(monkeypatch):
    """More sequences needing every token's logits than a call holds: those in the earlier
    call are copied before the next call overwrites llama.cpp's buffer, so each sequence
    keeps its own logits (the same as the two-call path gives it)."""
    import simulacra.backends._decode as decode
    from simulacra.backends.base import Request
    from simulacra.backends.llamacpp import default_model_path

    monkeypatch.setattr(decode, "N_UBATCH", 4)   # a call of at most 4 tokens
    dec = decode.BatchDecoder(str(default_model_path()), n_seq=5, n_ctx=512, n_threads=2)
    prompts = [dec.tokenize(text) for text in ("One, two, three,", "Monday, Tuesday,",
                                               "A, B, C,", "January, February,", "red, green,")]

    def step(through_one_call: bool) -> list[np.ndarray]:
        seqs = []
        for slot, tokens in enumerate(prompts):
            *context, last = tokens
            dec._ll.llama_memory_seq_rm(dec.ctx.memory, slot, -1, -1)
            dec._eval([(None, i, t, False) for i, t in enumerate(context)], slot)
            s = decode._Seq(slot=slot, request=Request(prompt=""), matcher=None,
                            rng=np.random.default_rng(0), pos=len(context))
            s.pending = [last]
            seqs.append(s)
        if through_one_call:
            dec._eval_step(seqs)    # 5 rows that need logits: 1 in a first call, 4 after
            return [np.array(s.logits) for s in seqs]
        alone = []
        for s in seqs:
            dec._set_logit_rows, saved = None, dec._set_logit_rows
            dec._decode([s])
            dec._set_logit_rows = saved
            alone.append(np.array(s.logits))
        return alone

    try:
        if dec._set_logit_rows is None:
            pytest.fail("this llama-cpp-python build lacks llama_set_logit_rows")
        dec.warm_up()
        together, alone = step(True), step(False)
    finally:
        dec.close()
    # the first call's row, if overwritten, would hold the next sequence's logits
    assert np.argmax(alone[0]) != np.argmax(alone[1])
    for a, b in zip(together, alone, strict=True):
        assert np.argmax(a) == np.argmax(b)
        top = np.argsort(b)[-5:]
        np.testing.assert_allclose(a[top], b[top], atol=0.5)

"""The coarse output layer: its Q4_0 copy, the compiled refinement, and decoding through it."""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.backends._gguf import BF16, BLOCK, Q4_0, read_layout, to_bf16, to_q4_0
from simulacra.backends._screen import SLACK, Screen, _compiled


def _q4_0_reference(block: np.ndarray) -> tuple[float, list[int]]:
    """ggml's reference rounding for one block, written out value by value."""
    extreme = max(block, key=abs)
    scale = extreme / -8
    inverse = 1 / scale if scale else 0.0
    return scale, [min(15, int(np.float32(x * inverse + 8.5))) for x in block]


def test_q4_0_blocks_round_as_ggml_does():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 0.05, 4 * BLOCK).astype(np.float32)
    values[BLOCK:2 * BLOCK] = 0.0                     # an all-zero block
    raw = to_q4_0(values).reshape(-1, 2 + BLOCK // 2)
    assert raw.shape == (4, 18)
    for block, got in zip(values.reshape(-1, BLOCK), raw, strict=True):
        scale, nibbles = _q4_0_reference(block)
        assert got[:2].view(np.float16)[0] == np.float16(scale)
        assert [int(b) & 0xF for b in got[2:]] + [int(b) >> 4 for b in got[2:]] == nibbles
        decoded = (np.array(nibbles) - 8) * np.float32(np.float16(scale))
        assert np.all(np.abs(decoded - block) <= abs(scale) * 0.51 + 1e-6)


def _bf16(values: np.ndarray) -> np.ndarray:
    bits = values.astype(np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def test_refine_keeps_the_allowed_tokens_near_the_best_and_computes_them_exactly():
    lib = _compiled()
    if lib is None:
        pytest.skip("no C compiler here: the screen is off")
    rng = np.random.default_rng(1)
    n_vocab, n_embd = 1000, 64
    weights = _bf16(rng.normal(0, 0.1, (n_vocab, n_embd)))
    hidden = rng.normal(0, 1, n_embd).astype(np.float32)
    coarse = rng.normal(0, 3, n_vocab).astype(np.float32)
    coarse[7] = 50.0                                  # the favourite, but not allowed
    allowed = rng.random(n_vocab) < 0.7
    allowed[7] = False
    # llguidance's mask: one bit per token in 32-bit words, the last word padded
    mask = np.packbits(np.pad(allowed, (0, 24)), bitorder="little").view(np.uint32)
    screen = Screen(lib, weights.ctypes.data, n_vocab, n_embd)

    exact, ids = screen.refine(coarse, mask, hidden, window=1.0)

    best = coarse[allowed].max()
    want = np.flatnonzero(allowed & (coarse >= best - (1.0 + SLACK)))
    assert ids.tolist() == want.tolist() and 7 not in ids
    state = (_bf16(hidden).astype(np.uint32) << 16).view(np.float32)
    rows = (weights[ids].astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_allclose(exact, rows @ state, rtol=1e-5, atol=1e-5)
    # without a mask every token counts, the favourite first
    _, ids = screen.refine(coarse, None, hidden, window=1.0)
    assert ids.tolist() == [7]
    none = np.zeros_like(mask)
    assert screen.refine(coarse, none, hidden, 1.0)[1].size == 0


@pytest.fixture(scope="module")
def screen_file(tmp_path_factory):
    from simulacra.backends.llamacpp import default_model_path, has_screen

    if not has_screen():
        pytest.skip("this llama.cpp build has no llama_set_logit_screen")
    dst = tmp_path_factory.mktemp("screen") / "bf16s.gguf"
    assert to_bf16(default_model_path(), dst, screen=True)
    return dst


@pytest.mark.embedded
def test_the_screen_file_adds_a_q4_0_output_layer_and_keeps_every_other_logit(screen_file, tmp_path):
    from simulacra.backends.llamacpp import default_model_path
    from tests.backends.test_gguf import _next_token_logits

    layout = read_layout(screen_file)
    kinds = {t.name: t.kind for t in layout.tensors}
    assert kinds["output.weight"] == Q4_0 and kinds["token_embd.weight"] == BF16
    plain = tmp_path / "bf16.gguf"
    assert to_bf16(default_model_path(), plain)
    assert "output.weight" not in {t.name for t in read_layout(plain).tensors}
    # logits mode reads the exact (tied) embeddings, not the coarse copy
    np.testing.assert_array_equal(_next_token_logits(screen_file), _next_token_logits(plain))


@pytest.mark.embedded
def test_screened_rows_hold_every_token_min_p_keeps_with_llama_cpps_exact_logits(screen_file):
    from simulacra.backends._decode import MIN_P, BatchDecoder

    dec = BatchDecoder(str(screen_file), n_seq=2, n_ctx=512, n_threads=2)
    try:
        assert dec._screen is not None
        dec.warm_up()
        for prompt in ('Medical billing records:\n{"patient_name": "',
                       'A product review: {"product": "'):
            tokens = dec.tokenize(prompt)
            rows = {}
            for screen in (False, True):
                dec._ll.llama_memory_seq_rm(dec.ctx.memory, 0, -1, -1)
                dec._mode(hidden=True)
                dec._set_screen(dec.ctx.ctx, screen)
                dec._set_logit_rows(dec.ctx.ctx, 1)
                dec._fill([(0, i, t, True) for i, t in enumerate(tokens)])
                dec._check(dec._ll.llama_decode(dec.ctx.ctx, dec._batch))
                row = np.ctypeslib.as_array(dec._ll.llama_get_logits(dec.ctx.ctx),
                                            shape=(dec.n_vocab,)).copy()
                rows[screen] = (row, dec._hidden(len(tokens) - 1).copy())
            exact_row, coarse_row = rows[False][0], rows[True][0]
            kept = np.flatnonzero(exact_row >= exact_row.max() + np.log(MIN_P))
            # the coarse logits are another matrix's, close to the exact ones near the top
            assert np.abs(coarse_row - exact_row).max() > 0.1
            assert np.abs(coarse_row[kept] - exact_row[kept]).max() < SLACK / 2
            exact, ids = dec._screen.refine(coarse_row, None, rows[True][1], -np.log(MIN_P))
            assert set(kept.tolist()) <= set(ids.tolist())
            np.testing.assert_allclose(exact, exact_row[ids], atol=1e-3)
    finally:
        dec._set_screen(dec.ctx.ctx, False)
        dec.close()


@pytest.mark.embedded
def test_records_are_the_same_with_the_screen_as_without(screen_file):
    """The screen changes what llama.cpp reads, not what is sampled: the same records."""
    import json
    from pathlib import Path

    from examples.medical_billing import MedicalBilling

    from simulacra.backends.llamacpp import LlamaCppBackend
    from simulacra.generate import Generator

    lines = (Path(__file__).parents[2] / "examples" / "medical_billing.jsonl").read_text()
    examples = [json.loads(line) for line in lines.splitlines() if line.strip()]
    made = {}
    for screen in (True, False):
        backend = LlamaCppBackend(screen_file, batch=4, screen=screen)
        assert (backend._decoder._screen is not None) == screen
        gen = Generator(MedicalBilling, backend, examples=examples, subject="medical billing",
                        seed=3)
        made[screen] = [r.model_dump() for r in gen.stream(6)]
        gen.close()
    assert len(made[True]) == 6 and made[True] == made[False]

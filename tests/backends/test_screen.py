"""The coarse output layer: packed at load, its coarse logits, the compiled refinement,
and decoding through it."""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.backends._gguf import to_bfloat16
from simulacra.backends._screen import BLOCK, SLACK, Screen, _compiled


def _screen(weights: np.ndarray) -> Screen:
    """A screen over BF16 `weights` (n_vocab, n_embd), or a skip where this machine has none."""
    lib = _compiled()
    if lib is None:
        pytest.skip("no C compiler here: the screen is off")
    try:
        layer = Screen.pack(lib, weights.ctypes.data, *weights.shape, n_threads=2)
        return Screen(lib, weights.ctypes.data, *weights.shape, layer["packed"], layer["scales"])
    except RuntimeError:
        pytest.skip("no AVX512-VNNI here: the screen is off")


def refine_one(screen: Screen, coarse, mask, hidden, window):
    """One row through `refine_rows`, the way the decoder refines a step's rows."""
    return screen.refine_rows([(coarse, mask, hidden, window)], n_threads=1)[0]


def _widen(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def test_coarse_logits_are_the_4_bit_layer_times_the_state_rounded_to_8_bits():
    rng = np.random.default_rng(2)
    n_vocab, n_embd = 64, 96
    weights = to_bfloat16(rng.normal(0, 0.1, (n_vocab, n_embd)))
    weights[3, :BLOCK] = 0                            # an all-zero block
    hidden = rng.normal(0, 1, (5, n_embd)).astype(np.float32)
    hidden[1, 7] = 40.0                               # an outlier sets its state's scale
    screen = _screen(weights)

    coarse = screen.coarse(hidden, n_threads=2).copy()

    # the same rounding, written out: each block of 32 values over its signed largest / -8
    # (float16), nibbles clipped to -8..7; each state over its largest magnitude / 127
    w = _widen(weights).reshape(n_vocab, -1, BLOCK)
    extreme = np.take_along_axis(w, np.abs(w).argmax(axis=2)[..., None], axis=2)
    scale = (extreme / np.float32(-8)).astype(np.float32)
    inverse = np.divide(np.float32(1), scale, out=np.zeros_like(scale), where=scale != 0)
    q = np.clip(np.rint(w * inverse), -8, 7)
    state_scale = np.abs(hidden).max(axis=1, keepdims=True) / np.float32(127)
    x = np.rint(hidden * (np.float32(1) / state_scale)).reshape(len(hidden), -1, BLOCK)
    sums = np.einsum("tbi,rbi->rtb", q, x)            # exact integers
    want = (sums * scale[..., 0].astype(np.float16).astype(np.float64)).sum(axis=2) * state_scale
    np.testing.assert_allclose(coarse, want, rtol=1e-5, atol=1e-4)
    # and close to the exact product
    exact = hidden @ _widen(weights).T
    assert np.abs(coarse - exact).max() < 0.1 * np.abs(exact).max()
    assert screen.coarse(hidden[2:3], n_threads=1).tolist() == [coarse[2].tolist()]


def test_refine_keeps_the_allowed_tokens_near_the_best_and_computes_them_exactly():
    rng = np.random.default_rng(1)
    n_vocab, n_embd = 1008, 64
    weights = to_bfloat16(rng.normal(0, 0.1, (n_vocab, n_embd)))
    hidden = rng.normal(0, 1, n_embd).astype(np.float32)
    coarse = rng.normal(0, 3, n_vocab).astype(np.float32)
    coarse[7] = 50.0                                  # the favourite, but not allowed
    allowed = rng.random(n_vocab) < 0.7
    allowed[7] = False
    # llguidance's mask: one bit per token in 32-bit words, the last word padded
    mask = np.packbits(np.pad(allowed, (0, 16)), bitorder="little").view(np.uint32)
    screen = _screen(weights)

    exact, ids = refine_one(screen, coarse, mask, hidden, 1.0)

    best = coarse[allowed].max()
    want = np.flatnonzero(allowed & (coarse >= best - (1.0 + SLACK)))
    assert ids.tolist() == want.tolist() and 7 not in ids
    state = _widen(to_bfloat16(hidden))
    np.testing.assert_allclose(exact, _widen(weights[ids]) @ state, rtol=1e-5, atol=1e-5)
    # without a mask every token counts, the favourite first
    _, ids = refine_one(screen, coarse, None, hidden, 1.0)
    assert ids.tolist() == [7]
    none = np.zeros_like(mask)
    assert refine_one(screen, coarse, none, hidden, 1.0)[1].size == 0


def test_rows_refined_together_on_two_threads_are_each_rows_own_refinement():
    rng = np.random.default_rng(3)
    n_vocab, n_embd = 2048, 64
    weights = to_bfloat16(rng.normal(0, 0.1, (n_vocab, n_embd)))
    screen = _screen(weights)
    rows = []
    for r in range(7):   # rows of different widths, with and without a mask
        allowed = rng.random(n_vocab) < 0.5
        mask = np.packbits(allowed, bitorder="little").view(np.uint32) if r % 2 else None
        rows.append((rng.normal(0, 1 + r, n_vocab).astype(np.float32), mask,
                     rng.normal(0, 1, n_embd).astype(np.float32), 0.5 * r))

    # shared output buffers too small for the step: they grow, and the rows are refined again
    screen._ids, screen._exact = np.empty(8, np.int32), np.empty(8, np.float32)
    together = [(exact.copy(), ids.copy()) for exact, ids in screen.refine_rows(rows, n_threads=2)]
    assert len(screen._ids) > 8

    for (coarse, mask, hidden, window), (exact, ids) in zip(rows, together, strict=True):
        one_exact, one_ids = refine_one(screen, coarse, mask, hidden, window)
        assert ids.tolist() == one_ids.tolist() and exact.tolist() == one_exact.tolist()
    assert len({ids.size for _, ids in together}) > 3   # the windows do differ


@pytest.mark.embedded
def test_screened_rows_hold_every_token_min_p_keeps_with_llama_cpps_exact_logits():
    from simulacra.backends._decode import MIN_P, BatchDecoder
    from simulacra.backends.llamacpp import default_model_path, fast_weights

    dec = BatchDecoder(str(fast_weights(default_model_path())), n_seq=2, n_ctx=512, n_threads=2)
    try:
        if dec._screen is None:
            pytest.skip("no screen on this machine (no AVX512-BF16 and VNNI, or no compiler)")
        dec.warm_up()
        for prompt in ('Medical billing records:\n{"patient_name": "',
                       'A product review: {"product": "'):
            tokens = dec.tokenize(prompt)
            dec._ll.llama_memory_seq_rm(dec.ctx.memory, 0, -1, -1)
            dec._mode(hidden=True)
            dec._set_logit_rows(dec.ctx.ctx, 1)   # the last token: llama.cpp's exact logits
            dec._fill([(0, i, t, True) for i, t in enumerate(tokens)])
            dec._check(dec._ll.llama_decode(dec.ctx.ctx, dec._batch))
            exact_row = np.ctypeslib.as_array(dec._ll.llama_get_logits(dec.ctx.ctx),
                                              shape=(dec.n_vocab,)).copy()
            hidden = dec._hidden(len(tokens) - 1).copy()
            coarse_row = dec._screen.coarse(hidden[None], n_threads=2)[0]
            kept = np.flatnonzero(exact_row >= exact_row.max() + np.log(MIN_P))
            # the coarse logits are another matrix's, close to the exact ones near the top
            assert np.abs(coarse_row - exact_row).max() > 0.1
            assert np.abs(coarse_row[kept] - exact_row[kept]).max() < SLACK / 2
            exact, ids = refine_one(dec._screen, coarse_row, None, hidden, -np.log(MIN_P))
            assert set(kept.tolist()) <= set(ids.tolist())
            np.testing.assert_allclose(exact, exact_row[ids], atol=1e-3)
    finally:
        dec.close()


@pytest.mark.embedded
def test_records_are_the_same_with_the_screen_as_without():
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
        backend = LlamaCppBackend(batch=4, screen=screen)
        if screen and backend._decoder._screen is None:
            backend.close()
            pytest.skip("no screen on this machine (no AVX512-BF16 and VNNI, or no compiler)")
        assert (backend._decoder._screen is not None) == screen
        gen = Generator(MedicalBilling, backend, examples=examples, subject="medical billing",
                        seed=3)
        made[screen] = [r.model_dump() for r in gen.stream(6)]
        gen.close()
    assert len(made[True]) == 6 and made[True] == made[False]

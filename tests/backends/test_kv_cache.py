"""The patched KV cache (scripts/llama-kv-lazy-zero.patch) zeroes cells as attention first
reaches them. The risk in that is zeroing a cell that holds a live sequence's keys; this
checks that a sequence's logits do not change when another sequence pushes the cache past
the cells zeroed so far and is then removed, with flash attention on and off (off, attention
reads the padding as numbers, so its zeroing matters there)."""

from __future__ import annotations

import numpy as np
import pytest


def _decode(ll, ctx, batch, seq: int, tokens: list[int], start: int) -> np.ndarray:
    """Put `tokens` of sequence `seq` at positions start.. and return the last one's logits."""
    n_vocab = ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(ll.llama_get_model(ctx)))
    for at in range(0, len(tokens), 64):
        part = tokens[at:at + 64]
        batch.n_tokens = len(part)
        for i, token in enumerate(part):
            batch.token[i], batch.pos[i] = token, start + at + i
            batch.n_seq_id[i], batch.seq_id[i][0] = 1, seq
            batch.logits[i] = i == len(part) - 1
        assert ll.llama_decode(ctx, batch) == 0
    return np.ctypeslib.as_array(ll.llama_get_logits_ith(ctx, len(part) - 1), shape=(n_vocab,)).copy()


@pytest.mark.parametrize("flash_attention", [True, False])
def test_live_cells_survive_the_cache_growing_past_them(flash_attention):
    import llama_cpp as ll
    from llama_cpp import _internals

    from simulacra.backends.llamacpp import default_model_path

    model = _internals.LlamaModel(path_model=str(default_model_path()),
                                  params=ll.llama_model_default_params(), verbose=False)
    prompt = model.tokenize(b"A patient record: name John, age 42, visit on Monday for",
                            add_bos=True, special=False)
    rest = model.tokenize(b" a routine check of blood pressure", add_bos=False, special=False)
    filler = model.tokenize(b" the quick brown fox jumps over the lazy dog" * 60, add_bos=False,
                            special=False)
    assert len(filler) > 512   # past the first 256-cell block that the prompt's decode zeroed

    def context():
        params = ll.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch, params.n_seq_max = 2048, 64, 64, 2
        params.kv_unified, params.n_threads, params.n_threads_batch = True, 2, 2
        params.flash_attn_type = 1 if flash_attention else 0
        return _internals.LlamaContext(model=model, params=params, verbose=False)

    batch = ll.llama_batch_init(64, 0, 1)
    try:
        alone = context()
        _decode(ll, alone.ctx, batch, 0, prompt, 0)
        expected = _decode(ll, alone.ctx, batch, 0, rest, len(prompt))

        shared = context()
        _decode(ll, shared.ctx, batch, 0, prompt, 0)
        _decode(ll, shared.ctx, batch, 1, filler, 0)   # cells past the prompt's, zeroed now
        ll.llama_memory_seq_rm(ll.llama_get_memory(shared.ctx), 1, -1, -1)
        got = _decode(ll, shared.ctx, batch, 0, rest, len(prompt))
    finally:
        ll.llama_batch_free(batch)

    assert np.isfinite(got).all()
    assert int(got.argmax()) == int(expected.argmax())
    # the same numbers (equal here; the tolerance allows for a wider attention read's rounding)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3 * float(np.abs(expected).max()))


def test_requests_with_one_prompt_share_their_head_and_its_cells_are_counted_once():
    from simulacra.backends._decode import _group_heads, _HeldHeads

    header, a, b = [1, 2, 3], [4, 5, 6, 7], [8, 9]
    prompts = [header + a, header + a, header + b, header + b, header + [5]]
    heads = [p + [0] for p in prompts]   # the grammar's opening, the same for all
    # each sequence evaluates its head's last token itself; a prompt of one request shares
    # only what every head has
    assert _group_heads(prompts, heads, 3) == [7, 7, 5, 5, 3]

    held = _HeldHeads(3)
    assert held.cells_to_load(heads[0][:7]) == 4
    assert held.start(0, heads[0][:7]) == -4 and held.cells == 4
    assert held.cells_to_load(heads[1][:7]) == 0 and held.start(1, heads[1][:7]) == 0
    # the prefix sequence moves on to b while a's two sequences still hold a's cells
    assert held.start(2, heads[2][:5]) == -2 and held.cells == 6
    assert held.finish(0) == 0 and held.finish(1) == 4 and held.cells == 2
    assert held.start(4, heads[4][:3]) == 0          # a request alone: nothing to hold
    assert held.finish(2) == 0 and held.cells == 2   # b stays in the prefix sequence
    # a head no sequence shares any more goes when the next is loaded
    assert held.start(3, heads[0][:7]) == 2 - 4 and held.cells == 4

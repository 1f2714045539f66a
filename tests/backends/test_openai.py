"""The OpenAI backend against a real OpenAI-compatible server (llama_cpp.server) on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from simulacra import Generator
from simulacra.backends.openai import OpenAIBackend, rung_from_openapi
from simulacra.errors import MissingKeyError, UsageError
from tests.conftest import _free_port

pytestmark = pytest.mark.server


def test_generator_on_a_real_server_gives_valid_records(llama_server):
    from examples.medical_billing import EXAMPLES as SHOTS
    from examples.medical_billing import MedicalBilling

    gen = Generator(MedicalBilling, model="openai/gemma-270m", examples=SHOTS,
                    subject="medical_billing", seed=5, backend_options={"base_url": llama_server})
    records = gen.generate(2)
    assert len(records) == 2 and all(isinstance(r, MedicalBilling) for r in records)
    # llama.cpp server refuses "json_schema" and takes its own json_object+schema form.
    assert set(gen.stats.routes) == {"json_object+schema"}
    assert gen.stats.tokens_out > 0
    gen.close()


def test_unreachable_endpoint_is_a_usage_error():
    with pytest.raises(UsageError, match="is unreachable"):
        OpenAIBackend("m", base_url=f"http://127.0.0.1:{_free_port()}/v1")


def test_missing_key_for_the_openai_api():
    with pytest.raises(MissingKeyError, match="set OPENAI_API_KEY"):
        OpenAIBackend("gpt-4o-mini")


def test_repr_never_shows_the_key(monkeypatch, llama_server):
    monkeypatch.setenv("MY_KEY", "sk-test-SECRET-123")
    backend = OpenAIBackend("gemma-270m", base_url=llama_server, api_key_env="MY_KEY")
    assert "SECRET" not in repr(backend)
    backend.close()


def test_text_and_extraction_on_a_real_server(llama_server):
    from simulacra.extract import Extractor
    from simulacra.text import TextWriter, missing_values
    from tests.test_extract import Actor

    backend = OpenAIBackend("gemma-270m", base_url=llama_server)
    writer = TextWriter(backend, {"style": "informal"}, seed=2, max_attempts=3)
    result = writer.write({"Actor": "Tom Hanks", "Film": ["Big"]})
    # The endpoint has no grounded decoding: the check and the rewrites are all there is,
    # and whatever still misses is reported.
    assert result.attempts >= 1 and result.text
    assert result.missing == missing_values(result.text, ["Tom Hanks", "Big"])
    extractor = Extractor(Actor, model=backend)
    actor = extractor.extract("Tom Hanks starred in Big and in Cast Away.")
    assert isinstance(actor, Actor)
    assert extractor.stats.routes == {"json_object+schema": extractor.stats.attempts}
    backend.close()


def test_an_endpoint_run_names_used_values_and_gives_each_record_its_context(llama_server,
                                                                              tmp_path):
    from examples.medical_billing import EXAMPLES as SHOTS
    from examples.medical_billing import MedicalBilling

    class Recording(OpenAIBackend):   # the real server; the requests are kept to read
        sent: list = []

        def complete(self, requests):   # called from the engine's threads
            self.sent.extend(requests)
            return super().complete(requests)

    backend = Recording("gemma-270m", base_url=llama_server, concurrency=2, cache=False)
    contexts = ["a patient seen in a rural clinic", "a patient seen in a dental practice"]
    gen = Generator(MedicalBilling, model=backend, examples=SHOTS, subject="medical_billing",
                    seed=8, context=contexts, max_attempts=8)
    report = gen.write(tmp_path / "bills.jsonl", 3)
    assert report.stats.valid == 3
    first, last = backend.sent[0].prompt, backend.sent[-1].prompt
    # batch 1 names the examples' values; a later batch also what batch 1 kept
    assert all(f'"{e["patient_name"]}"' in first for e in SHOTS)
    kept = [json.loads(line) for line in (tmp_path / "bills.jsonl").open()]
    assert any(f'"{r["patient_name"]}"' in last for r in kept[:2] if len(r["patient_name"]) <= 60)
    assert all(r.prompt.rsplit("The next record is about: ", 1)[1].strip() in contexts
               for r in backend.sent)
    rows = [json.loads(line) for line in (tmp_path / "bills.jsonl.ledger.jsonl").open()]
    assert {row["context"] for row in rows} <= set(contexts)
    backend.close()


def test_the_ladder_starts_where_the_server_describes_it_or_is_probed_once(llama_server):
    """llama-cpp-python's server describes its response formats in /openapi.json: the first
    run starts on its json_object+schema form and no request is refused. A server that does
    not describe them (the proxy hides the document) is probed once, then remembered."""
    from examples.medical_billing import EXAMPLES as SHOTS
    from examples.medical_billing import MedicalBilling

    from tests.faultproxy import FaultProxy

    def run(base_url, seed, cache=True):
        backend = OpenAIBackend("gemma-270m", base_url=base_url, concurrency=4, cache=cache)
        gen = Generator(MedicalBilling, model=backend, examples=SHOTS,
                        subject="medical_billing", seed=seed, max_attempts=3)
        list(gen.outcomes(3))   # a record the small model keeps copying may fail: not the point
        backend.close()
        return backend.requests, gen.stats

    sent, stats = run(llama_server, seed=30, cache=False)
    assert sent == stats.attempts and set(stats.routes) == {"json_object+schema"}

    proxy = FaultProxy(llama_server.removesuffix("/v1"), rate=0.0,
                       hidden=("/openapi.json",)).start()
    try:
        sent, stats = run(proxy.base_url, seed=31)
        # probed: "json_schema" answered with a 500 that names the response format (a
        # refusal); probing goes one request at a time, so only that one is wasted
        assert sent - stats.attempts == 1
        sent, stats = run(proxy.base_url, seed=32)   # same endpoint and model: remembered
        assert sent == stats.attempts and set(stats.routes) == {"json_object+schema"}
    finally:
        proxy.stop()


def test_the_response_formats_an_openapi_document_allows():
    """The rung read from a server's OpenAPI document: vLLM's form (a type enum with
    json_schema), llama-cpp-python's (json_object with a schema property), one without."""
    def doc(response_format):
        return {"components": {"schemas": {
            "ChatRequest": {"type": "object", "properties": {
                "messages": {"type": "array"},
                "response_format": {"anyOf": [{"$ref": "#/components/schemas/Format"},
                                              {"type": "null"}]}}},
            "Format": response_format}}}

    vllm_like = {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["text", "json_object", "json_schema"]},
        "json_schema": {"type": "object"}}}
    llama_like = {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["text", "json_object"]},
        "schema": {"type": "object"}}}
    plain = {"type": "object", "properties": {"type": {"const": "json_object"}}}
    assert rung_from_openapi(doc(vllm_like)) == "json_schema"
    assert rung_from_openapi(doc(llama_like)) == "json_object+schema"
    assert rung_from_openapi(doc(plain)) == "json_object"
    assert rung_from_openapi({"components": {"schemas": {"X": {"properties": {}}}}}) is None
    assert rung_from_openapi({}) is None


def test_text_and_extract_commands_take_the_endpoint_flags(llama_server, tmp_path):
    from typer.testing import CliRunner

    from simulacra.cli.app import app
    from tests.conftest import EXAMPLES

    records = tmp_path / "records.jsonl"
    records.write_text('{"Actor": "Tom Hanks", "Film": ["Big"]}\n')
    texts, back = tmp_path / "texts.jsonl", tmp_path / "back.jsonl"
    endpoint = ["-m", "openai/gemma-270m", "--base-url", llama_server]
    wrote = CliRunner().invoke(app, ["text", str(records), "-o", str(texts), *endpoint],
                               catch_exceptions=False)
    assert wrote.exit_code in (0, 1), wrote.output   # 1: a text left ungrounded, said so
    assert json.loads(texts.read_text())["text"]
    got = CliRunner().invoke(app, ["extract", str(texts), "--schema",
                                   f"{EXAMPLES}/actor.py:Actor", "-o", str(back), *endpoint],
                             catch_exceptions=False)
    assert got.exit_code == 0, got.output
    ledger = [json.loads(line) for line in (tmp_path / "back.jsonl.ledger.jsonl").open()]
    assert ledger[0]["tries"][0]["route"] == "json_object+schema"


def test_example_values_tokens_are_pushed_down_through_logit_bias(llama_server):
    from examples.medical_billing import EXAMPLES as SHOTS
    from examples.medical_billing import MedicalBilling

    backend = OpenAIBackend("gemma-270m", base_url=llama_server, concurrency=2)
    bias = backend._logit_bias(["John Doe", "Emily Stone", "99203", "J20.9"])
    # every token of the names, and their first word after a space; none for the code and
    # the digits, whose first token is one character that every other value may start with
    names = set()
    for name in ("John Doe", "Emily Stone"):
        names |= set(backend._server_tokens(name)) | {backend._server_tokens(" " + name)[0]}
    assert {int(t) for t in bias} == names and set(bias.values()) == {-10.0}
    # a word the tokenizer cuts in pieces keeps its later pieces (other words share them)
    pieces = backend._server_tokens("Szczepanskiewicz")
    assert len(pieces) > 1
    pushed = {int(t) for t in backend._logit_bias(["Szczepanskiewicz"])}
    assert pieces[0] in pushed and not pushed & set(pieces[1:]), (pieces, pushed)
    # a value written like one of the schema's keys leaves the key's tokens alone
    key = backend._server_tokens("patient")[0]
    assert str(key) in backend._logit_bias(["patient"])
    assert str(key) not in backend._logit_bias(["patient"], {"properties": {"patient": {}}})
    gen = Generator(MedicalBilling, model=backend, examples=SHOTS, subject="medical_billing",
                    seed=3, max_attempts=3)
    made = [r.patient_name for r in gen.stream(4)]
    backend.close()
    firsts = {e["patient_name"].split()[0] for e in SHOTS}
    assert not [name for name in made if name.split()[0] in firsts], made

"""`simulacra text` and `simulacra extract` on a scripted backend: outputs and ledgers."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from simulacra.backends import registry
from simulacra.backends.fake import ScriptedBackend
from simulacra.cli.app import app
from tests.conftest import EXAMPLES

ACTOR = f"{EXAMPLES}/actor.py:Actor"


def invoke(fake, args):
    registry.register("scripted", lambda **options: fake)
    try:
        return CliRunner().invoke(app, [*args, "-m", "scripted"], catch_exceptions=False)
    finally:
        registry.unregister("scripted")


def test_extract_writes_records_and_one_ledger_row_per_text(tmp_path):
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"text": "Tom Hanks was in Big."}\n"Nobody here."\n')
    fake = ScriptedBackend(['{"Actor": "Tom Hanks", "Film": ["Big"]}', "no json", "still none"])
    result = invoke(fake, ["extract", str(texts), "--schema", ACTOR, "-o", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 1  # one text failed: said, not hidden
    assert "valid 1/2 (50%)" in result.stderr
    assert [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()] == [
        {"Actor": "Tom Hanks", "Film": ["Big"]}]
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl.ledger.jsonl").read_text().splitlines()]
    assert [(r["index"], r["outcome"], r["attempts"]) for r in rows] == [
        (0, "ok", 1), (1, "failed: parse", 2)]
    failed = rows[1]["tries"]
    assert [t["text"] for t in failed] == ["no json", "still none"]
    assert all(t["rejected"].startswith("parse: no JSON object") for t in failed)
    assert failed[0]["seed"] != failed[1]["seed"]  # each attempt its own seed


def test_text_writes_one_row_per_record_with_its_grounding(tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_text('{"Actor": "Tom Hanks", "Film": ["Big"]}\n')
    fake = ScriptedBackend(["Tom Hanks shines in Big."])
    result = invoke(fake, ["text", str(records), "--style", "informal", "-o",
                           str(tmp_path / "t.jsonl")])
    assert result.exit_code == 0 and "1/1 grounded" in result.stderr
    [row] = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert row["text"] == "Tom Hanks shines in Big." and row["grounded"] and row["missing"] == []
    assert row["preferences"] == {"style": "informal"}


def test_extract_takes_labelled_examples_and_shows_them_to_the_model(tmp_path):
    texts = tmp_path / "texts.jsonl"
    texts.write_text('"Tom Hanks was in Big."\n')
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"text": "Tom Hardy starred in Dunkirk.",
                                 "record": {"Actor": "Tom Hardy", "Film": ["Dunkirk"]}}) + "\n")
    fake = ScriptedBackend(['{"Actor": "Tom Hanks", "Film": ["Big"]}'])
    result = invoke(fake, ["extract", str(texts), "--schema", ACTOR, "--examples", str(pairs)])
    assert result.exit_code == 0, result.output
    [request] = fake.history
    assert "Text: Tom Hardy starred in Dunkirk." in request.prompt
    assert '"Film": ["Dunkirk"]' in request.prompt


def test_extract_cross_check_keeps_what_both_readings_state(tmp_path):
    texts = tmp_path / "texts.jsonl"
    texts.write_text('"Tom Hanks was in Big and Splash."\n')
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"text": f"{name} starred in {film}.", "record": {
        "Actor": name, "Film": [film]}}) + "\n" for name, film in [("Tom Hardy", "Dunkirk"),
                                                                   ("Meg Ryan", "Sleepless")]))
    fake = ScriptedBackend(['{"Actor": "Tom Hanks", "Film": ["Big", "Splash"]}',
                            '{"Actor": "Tom Hanks", "Film": ["Splash"]}'])
    schema = tmp_path / "cast.json"   # Film optional: a required field keeps its value
    schema.write_text(json.dumps({"title": "Cast", "type": "object", "required": ["Actor"],
                                  "properties": {"Actor": {"type": "string"}, "Film": {
                                      "type": "array", "items": {"type": "string"}}}}))
    out = tmp_path / "r.jsonl"
    result = invoke(fake, ["extract", str(texts), "--schema", str(schema), "--examples",
                           str(pairs), "--cross-check", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(x) for x in out.read_text().splitlines()] == [
        {"Actor": "Tom Hanks", "Film": ["Splash"]}]
    [row] = [json.loads(x) for x in (tmp_path / "r.jsonl.ledger.jsonl").read_text().splitlines()]
    assert row["dropped"] == ["Film"] and row["second_reading"]["Film"] == ["Splash"]
    assert fake.history[0].prompt.index("Hardy") < fake.history[0].prompt.index("Meg")
    assert fake.history[1].prompt.index("Meg") < fake.history[1].prompt.index("Hardy")


def test_extract_refuses_an_example_that_does_not_match_the_schema(tmp_path):
    texts = tmp_path / "texts.jsonl"
    texts.write_text('"Tom Hanks was in Big."\n')
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"text": "x", "record": {"Actor": 3}}) + "\n")
    result = invoke(ScriptedBackend([]), ["extract", str(texts), "--schema", ACTOR,
                                          "--examples", str(pairs)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: example #1's record does not match Actor")


def test_text_and_extract_reruns_of_a_finished_job_load_no_model(tmp_path, counted_model):
    records = tmp_path / "records.jsonl"
    records.write_text('{"name": "Ada Lovelace", "city": "London"}\n'
                       '{"name": "Alan Turing", "city": "Wilmslow"}\n')
    texts, out = tmp_path / "texts.jsonl", tmp_path / "records-back.jsonl"
    text_args = ["text", str(records), "-m", "counted-fill", "-o", str(texts)]
    extract_args = ["extract", str(texts), "--schema", f"{EXAMPLES}/actor.py:Actor",
                    "-m", "counted-fill", "-o", str(out)]
    for args in (text_args, extract_args):
        first = CliRunner().invoke(app, args, catch_exceptions=False)
        assert first.exit_code == 0, first.output
    assert len(counted_model) == 2
    for args, said in ((text_args, "already holds all 2 texts of this job"),
                       (extract_args, "already holds the records of all 2 texts of this job")):
        again = CliRunner().invoke(app, args, catch_exceptions=False)
        assert again.exit_code == 0 and said in again.stderr, again.output
    assert len(counted_model) == 2

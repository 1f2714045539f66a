"""Each sink writes records as they come and reads back to the same data."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest

from simulacra import load_schema
from simulacra.errors import UsageError
from simulacra.sinks import open_sink

SCHEMA = load_schema("tests.data.rich_models:Customer").json_schema
ROWS = [
    {"id": "6f1c1c5e-1f6b-4a43-9a3c-2f51f0b7b7a1", "name": "Ada", "age": 30, "score": 0.5,
     "plan": "pro", "channel": "web", "active": True, "signed_up": "2020-01-02",
     "last_seen": "2024-05-06T07:08:09Z", "address": {"city": "Lima", "postcode": "12345"},
     "tags": ["a", "b"], "referrer": None},
    {"id": "0a7d6f3e-9c1b-4d2e-8f3a-5b6c7d8e9f00", "name": "Bo", "age": 41, "score": 0.25,
     "plan": "basic", "channel": "store", "active": False, "signed_up": "2021-03-04",
     "last_seen": "2024-01-01T00:00:00Z", "address": {"city": "Oslo", "postcode": "54321"},
     "tags": ["c"], "referrer": "friend"},
]


def write(path):
    sink = open_sink(path, SCHEMA)
    for row in ROWS:
        sink.write(row)
    sink.close()


def test_jsonl_lines_are_complete_as_soon_as_written(tmp_path):
    path = tmp_path / "out.jsonl"
    sink = open_sink(path, SCHEMA)
    sink.write(ROWS[0])
    assert json.loads(path.read_text()) == ROWS[0]  # flushed before close
    sink.write(ROWS[1])
    sink.close()
    assert [json.loads(line) for line in path.read_text().splitlines()] == ROWS


def test_csv_has_one_column_per_field_and_json_for_nested(tmp_path):
    path = tmp_path / "out.csv"
    write(path)
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == list(SCHEMA["properties"])
    assert json.loads(rows[0]["address"]) == ROWS[0]["address"]
    assert rows[1]["tags"] == '["c"]' and rows[1]["age"] == "41"


def test_parquet_types_follow_the_schema(tmp_path):
    path = tmp_path / "out.parquet"
    write(path)
    table = pq.read_table(path)
    assert str(table.schema.field("age").type) == "int64"
    assert str(table.schema.field("tags").type.value_type) == "string"
    assert table.schema.field("address").type.num_fields == 2
    assert table.to_pylist() == ROWS


@pytest.mark.parametrize("name, message", [
    ("out.xlsx", "unknown output extension '.xlsx'"),
    ("missing_dir/out.jsonl", "does not exist"),
])
def test_bad_outputs_are_refused(tmp_path, name, message):
    with pytest.raises(UsageError, match=message):
        open_sink(tmp_path / name, SCHEMA)


def test_existing_output_is_refused_and_left_unchanged(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("keep me\n")
    with pytest.raises(UsageError, match="exists: pass --overwrite"):
        open_sink(path, SCHEMA)
    assert path.read_text() == "keep me\n"
    open_sink(path, SCHEMA, overwrite=True).close()
    assert path.read_text() == ""

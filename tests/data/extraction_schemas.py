"""Schemas of the labelled extraction set (tests/data/extraction_set.jsonl), one per domain:
every field optional (a text may not state it), with the description a user would write.
The fields are listed in extraction_schemas.json (domain -> model name, field -> [type,
description]); this module makes them pydantic models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, create_model

TYPES = {"str": str, "int": int, "float": float}


def optional_fields(name: str, fields: dict[str, list[str]]) -> type[BaseModel]:
    """A pydantic model whose fields are all `type | None`, default None, described."""
    spec: dict[str, Any] = {key: (TYPES[kind] | None, Field(None, description=description))
                            for key, (kind, description) in fields.items()}
    return create_model(name, **spec)


SCHEMAS = {domain: optional_fields(entry["name"], entry["fields"]) for domain, entry in
           json.loads((Path(__file__).with_suffix(".json")).read_text()).items()}

"""Turn a schema spec (`file.py:Class`, `package.module:Class`, `schema.json`, a class or a dict)
into a `Schema`, with one-line errors that say what to fix."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from simulacra.errors import SchemaError
from simulacra.schema.model import Schema

SchemaSpec = str | Path | type[BaseModel] | dict[str, Any] | Schema


def load_schema(spec: SchemaSpec, *, check: bool = True) -> Schema:
    """Load a schema from any of the forms users hand us.

    `"examples/medical_billing.py:MedicalBilling"`, `"mypkg.models:Order"`,
    `"order.schema.json"`, a pydantic class or a JSON Schema dict all give a `Schema`.
    With `check` (the default), a schema using a refused feature raises UnsupportedSchemaError.
    """
    if isinstance(spec, Schema):
        return spec
    if isinstance(spec, type) and issubclass(spec, BaseModel):
        return Schema.from_pydantic(spec, check=check)
    if isinstance(spec, dict | bool):
        return Schema.from_json_schema(spec, check=check)
    if isinstance(spec, type):
        raise SchemaError(f"{spec.__name__} is not a pydantic model; subclass pydantic.BaseModel")
    text = str(spec)
    if text.endswith(".json") or (":" not in text and Path(text).suffix):
        return _load_json_file(Path(text), check)
    if ":" not in text:
        raise SchemaError(
            f"schema '{text}' is neither a .json file nor 'module:Class' "
            "(e.g. examples/medical_billing.py:MedicalBilling)"
        )
    where, _, name = text.rpartition(":")
    module = _import(where)
    obj = getattr(module, name, None)
    if obj is None:
        found = sorted(
            k for k, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, BaseModel) and v is not BaseModel
        )
        hint = f" (models there: {', '.join(found)})" if found else " (it defines no pydantic models)"
        raise SchemaError(f"no class '{name}' in {where}{hint}")
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise SchemaError(f"'{name}' in {where} is not a pydantic model; subclass pydantic.BaseModel")
    return Schema.from_pydantic(obj, check=check)


def _import(where: str) -> Any:
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise SchemaError(f"schema file not found: {where}")
        name = f"_simulacra_schema_{abs(hash(str(path.resolve())))}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise SchemaError(f"cannot import {where} as a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # pydantic resolves forward references through sys.modules
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise SchemaError(f"importing {where} failed: {type(exc).__name__}: {exc}") from None
        return module
    try:
        return importlib.import_module(where)
    except ImportError as exc:
        raise SchemaError(f"cannot import module '{where}': {exc}") from None


def _load_json_file(path: Path, check: bool) -> Schema:
    if not path.is_file():
        raise SchemaError(f"schema file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict | bool):
        raise SchemaError(f"{path} must hold a JSON Schema (an object or a boolean), "
                          f"not a {type(data).__name__}")
    title = data.get("title") if isinstance(data, dict) else None
    return Schema.from_json_schema(data, name=title if isinstance(title, str) and title
                                   else path.stem, check=check)


def load_schema_unchecked(spec: SchemaSpec) -> Schema:
    """Load without refusing unsupported features (for `simulacra check`, which reports them)."""
    return load_schema(spec, check=False)

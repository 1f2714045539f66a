"""Schemas: load a pydantic model or JSON Schema into one `Schema`, check what is supported."""

from simulacra.schema.load import load_schema
from simulacra.schema.model import Field, RecordInvalid, Schema
from simulacra.schema.support import SupportReport, check_support

__all__ = ["Field", "RecordInvalid", "Schema", "SupportReport", "check_support", "load_schema"]

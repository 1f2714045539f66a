"""simulacra: synthetic structured data from a schema, with language models.

    from simulacra import Generator
    records = Generator(MedicalBilling, examples=EXAMPLES, subject="medical_billing").generate(10)
"""

from simulacra.errors import (
    BackendError,
    GenerationError,
    SchemaError,
    SimulacraError,
    UnknownModelError,
    UnsupportedSchemaError,
    UsageError,
)
from simulacra.generate import Generator
from simulacra.schema import Schema, check_support, load_schema

__all__ = [
    "BackendError",
    "GenerationError",
    "Generator",
    "Schema",
    "SchemaError",
    "SimulacraError",
    "UnknownModelError",
    "UnsupportedSchemaError",
    "UsageError",
    "check_support",
    "load_schema",
]

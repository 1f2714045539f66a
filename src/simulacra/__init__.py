"""simulacra: synthetic structured data from a schema, with language models.

    from simulacra import Generator
    records = Generator(MedicalBilling, examples=EXAMPLES, subject="medical_billing").generate(10)
    Generator(MedicalBilling).write("billing.jsonl", 1000)   # resumable, with a ledger
    TextWriter().write({"Actor": "Tom Hanks", "Film": ["Big"]}).text
    Extractor(Actor).extract("Tom Hanks starred in Big.")
"""

from importlib.metadata import PackageNotFoundError, version

from simulacra.engine import Outcome, RunStats
from simulacra.errors import (
    BackendError,
    GenerationError,
    MissingKeyError,
    OutputError,
    SchemaError,
    SimulacraError,
    UnknownModelError,
    UnsupportedSchemaError,
    UsageError,
)
from simulacra.extract import Extractor
from simulacra.generate import Generator, WriteReport
from simulacra.roundtrip import roundtrip
from simulacra.schema import Schema, check_support, load_schema
from simulacra.text import TextResult, TextWriter

try:
    __version__ = version("simulacra")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "BackendError",
    "Extractor",
    "GenerationError",
    "Generator",
    "MissingKeyError",
    "Outcome",
    "OutputError",
    "RunStats",
    "Schema",
    "SchemaError",
    "SimulacraError",
    "TextResult",
    "TextWriter",
    "UnknownModelError",
    "UnsupportedSchemaError",
    "UsageError",
    "WriteReport",
    "__version__",
    "check_support",
    "load_schema",
    "roundtrip",
]

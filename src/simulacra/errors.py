"""Every error simulacra raises on purpose, as one tree.

    SimulacraError                 root: catch this to catch everything below
    ├── UsageError                 bad input from the user; the CLI exits 2
    │   ├── SchemaError            schema spec cannot be loaded or is invalid
    │   │   └── UnsupportedSchemaError   a keyword simulacra refuses (has .path)
    │   ├── UnknownModelError      model name or GGUF path not found (also a KeyError)
    │   └── MissingKeyError        an endpoint needs an API key that is not set
    ├── BackendError               the model or endpoint failed (has .backend, .retryable)
    ├── OutputError                writing the output failed (a full disk); exits 1
    └── GenerationError            a record could not be made valid within its attempts

Messages are one line and say what to fix; they are shown to users as they are.
"""

from __future__ import annotations


class SimulacraError(Exception):
    """Root of simulacra's errors."""


class UsageError(SimulacraError):
    """The user asked for something that cannot work; the message says what to change."""


class SchemaError(UsageError):
    """A schema spec could not be loaded, or is not a valid schema."""


class UnsupportedSchemaError(SchemaError):
    """The schema uses a feature simulacra refuses; `path` points at it (e.g. `properties.tags`)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class UnknownModelError(UsageError, KeyError):
    """A model name or GGUF path does not resolve. Also a KeyError, like a missing dict key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingKeyError(UsageError):
    """An endpoint needs an API key and none is set."""


class BackendError(SimulacraError):
    """The backend failed to answer. `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, backend: str, retryable: bool = False,
                 retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the server asked us to wait, if it said
        self.status = status  # the HTTP status, when the server answered with an error


class OutputError(SimulacraError):
    """Writing the output failed mid-run (a full disk, a removed directory); what was written
    before is kept, and rerunning the job resumes it."""


class GenerationError(SimulacraError):
    """A record stayed invalid after all its attempts; carries what was tried: `attempts`,
    the tries made (the whole run's, when it reports a run), `last_output`, the last raw
    reply that was rejected, and `errors`, the rejection of each failed record."""

    def __init__(self, message: str, *, attempts: int, last_output: str, errors: list[str]) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_output = last_output
        self.errors = errors

"""The engine: turns a plan into valid records through any backend, with retries and checks."""

from simulacra.engine.run import Outcome, RunStats, run_records

__all__ = ["Outcome", "RunStats", "run_records"]

"""Streaming writers: records go to disk as they are made, never collected in memory first."""

from simulacra.sinks.base import SUFFIXES, Sink, check_output, check_record_shape, open_sink

__all__ = ["SUFFIXES", "Sink", "check_output", "check_record_shape", "open_sink"]

"""Checks on records after decoding: cross-field rules, duplicates, leakage of examples.

Each takes records in and says what is wrong; the engine rejects and regenerates what fails,
and `simulacra report` runs the same checks over a finished data set.
"""

from simulacra.checks.dedup import NearDuplicates, text_signature
from simulacra.checks.rules import Rule, parse_rules

__all__ = ["NearDuplicates", "Rule", "parse_rules", "text_signature"]

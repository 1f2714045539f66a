"""The diversity steer: a run remembers the values it has made, field by field, and the
embedded decoder leans away from the frequent ones while it writes the next record.

Why: a small model has favourites. Asked for 100 patient names it writes "John Doe" 28 times;
duplicates are rejected and retried, but the values that survive are still a handful of
favourites and the examples' own values. Rejection cannot fix that; the decoder can.

How: for each steered field (free strings and wide numbers, never enums, booleans or
constants), `FieldCounts` counts every prefix of every value the run has written, plus the
examples' values (weighted, so an example's value is the least likely one to be copied). While
a value is decoded with prefix P, a candidate token that would make it P+t is penalized by

    strength * (repeats(P+t) / (count(P) + 1) + REPEAT_WEIGHT * ln repeats(P+t))

logits, where repeats(P+t) is how often the most repeated value starting with P+t occurs:
the share of the values so far that this continuation would repeat, plus a term that grows
with the repeats themselves (at N = 500 a name made 17 times is only 3% of the run, but 17
times too many). When P+t spells out a whole value already made, `strength *
COMPLETION_WEIGHT` more (times the share of the values through P+t that ended there): a run
that writes first names only reaches "Robert" in one token, and by the time the closing
quote is due, the model's preference for ending there is stronger than any share; the
penalty has to come while other names are still open. Where a whole value already made
could end, the penalty on ending is also what opening a list there costs ("Ben Affleck" +
", Jennifer Lopez"), unless the field's values hold lists: a list that starts with a repeat is
not another value of the field's kind, and without that the closing quote's penalty turned
names into lists (4 Actor values in 180). A path to one favourite
("John Doe" 28 times) costs about `strength` times its share; a popular start that many
different values share ("John " before many surnames, "99" before many procedure codes)
costs little, so the values keep their shape (the examples' style) and vary in content. It is
a penalty, not a ban: a field whose model distribution is sharp (a sex, a country) keeps its
favourites when nothing else is plausible, and a field with many good values spreads over
them.

A null is one value that every empty record repeats, but a null at the examples' rate is the
data's style (a review without a reviewer), not a favourite. So a nullable field's null costs
`strength` times the share of nulls the run has above the examples' share, and nothing at or
below it: without the examples' own rate as its anchor, a run that drifts into nulls (73% of
one run's reviewers, against one example in three) would repeat "no value" unchecked. An
optional field left out of its object is a null too, so closing an object before such a
field is written costs the same (backends/_steer.py).

Cross-field orderings (`insurance_claim_amount <= total_charge`) become `NumericBound`s: when
the first field of the pair is already written, the decoder keeps the second one's digits on
the right side (see backends/_steer.py), so the rule holds by construction instead of by
rejection and retry.
"""

from __future__ import annotations

import ast
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DIVERSITY = 0.5
MAX_STRENGTH = 20.0      # logits of penalty at diversity 1 for a continuation to the only value so far
REPEAT_WEIGHT = 0.1      # and this much more per e-fold of the repeats it leads to
COMPLETION_WEIGHT = 0.2  # and this much more for spelling out a whole value already made
EXAMPLE_WEIGHT = 4       # an example's value counts as this many records' (style, not content)
MAX_PREFIX = 48          # bytes of a value whose prefixes are counted; past that, no steer
MAX_VALUES = 50_000      # values remembered per field (memory stays bounded on huge runs)
MIN_WIDE_RANGE = 50      # a number field with fewer possible integers is low-cardinality
END = b'"'               # the end of a value in `FieldCounts` keys (a string's closing quote)
# how a list goes on inside one string value: "Ben Affleck, Jennifer Lopez", "A and B"
LIST_SEPARATORS = (b",", b";", b" and ", b" & ", b" / ", b" | ")
# ...and how a continuation opens one (" and" is one token, the space after it the next)
_LIST_OPENINGS = tuple(separator.rstrip(b" ") for separator in LIST_SEPARATORS)

Path = tuple[str, ...]   # keys from the root; "[]" stands for any array item


class FieldCounts:
    """For each prefix of the values seen so far (bytes as the JSON text has them): how many
    values start with it, and how often the most repeated value under it occurs. A value is
    stored with END appended (so a prefix ending in END is a whole value); values longer than
    MAX_PREFIX are known by their first MAX_PREFIX bytes."""

    def __init__(self) -> None:
        self.prefixes: Counter[bytes] = Counter()
        self.repeats: dict[bytes, int] = {}
        self.whole: Counter[bytes] = Counter()
        self.values = 0
        self.nulls = 0                        # nulls in the field (weighted like values)
        self.shown = self.shown_nulls = 0     # examples that have the field, and their nulls
        self.listed = 0                       # values that hold a LIST_SEPARATOR

    def add(self, raw: bytes, weight: int = 1) -> None:
        if self.values >= MAX_VALUES:
            return
        self.values += weight
        if any(separator in raw for separator in LIST_SEPARATORS):
            self.listed += weight
        key = (raw + END)[:MAX_PREFIX]
        self.whole[key] += weight
        repeats = self.whole[key]
        for end in range(len(key) + 1):
            prefix = key[:end]
            self.prefixes[prefix] += weight
            if self.repeats.get(prefix, 0) < repeats:
                self.repeats[prefix] = repeats

    def add_null(self, weight: int = 1) -> None:
        if self.values < MAX_VALUES:
            self.nulls += weight

    def count(self, prefix: bytes) -> int:
        return self.prefixes.get(prefix, 0)

    def null_pressure(self) -> float:
        """The share of nulls in the field above the examples' share (0 at or below it, and
        when no example has the field: then there is no rate to hold the run to)."""
        if not self.nulls or not self.shown:
            return 0.0
        share = self.nulls / (self.nulls + self.values)
        return max(0.0, share - self.shown_nulls / self.shown)

    def most_pressure(self, prefix: bytes) -> float:
        """The most `pressure(prefix, t)` can be for any continuation t: the values a
        continuation leads to are among those under `prefix`, so their repeats are at most
        `repeats[prefix]`, which is what an empty continuation reads, and the completion
        term is at most COMPLETION_WEIGHT. Where a value opens, a null may cost
        `null_pressure` instead. 0 for a prefix no value has: nothing there to lean away
        from."""
        shared = self.pressure(prefix, b"")
        most = shared + COMPLETION_WEIGHT if shared else 0.0
        return max(most, self.null_pressure()) if not prefix else most

    def pressure(self, prefix: bytes, continued: bytes) -> float:
        """How strongly continuing `prefix` with `continued` leads to a value already made:
        the count of the most repeated value that continuation leads to, over the values
        that start with `prefix` (its share), plus REPEAT_WEIGHT x ln(that count). A popular
        start shared by many different values ("John " before many surnames, "99" before
        many codes) costs little; a path to one favourite ("John Doe") costs its share, and
        more the more often it was taken, so on a long run a favourite cannot hide behind a
        small share.

        Plus, when the continuation spells out a whole value already made ("Robert", before
        its closing quote), COMPLETION_WEIGHT x the share of the values through it that
        ended there: the value is about to be repeated unless the model goes on, so the
        penalty comes while other values are still open.

        A continuation that opens a list right after a whole value already made costs what
        ending there costs, unless the field's values hold lists."""
        if len(prefix) >= MAX_PREFIX:   # past what is counted: the value is new enough
            return 0.0
        if not self.listed and continued.startswith(_LIST_OPENINGS) and self.whole.get(
                prefix + END):
            return self.pressure(prefix, END)   # a list after a repeat: still a repeat
        key = (prefix + continued)[:MAX_PREFIX]
        repeats = self.repeats.get(key, 0)
        if not repeats:
            return 0.0
        pressure = repeats / (self.count(prefix) + 1) + REPEAT_WEIGHT * math.log(repeats)
        if continued and not key.endswith(END):
            ended = self.whole.get(key + END, 0)   # values that are exactly `key`
            if ended:
                pressure += COMPLETION_WEIGHT * ended / self.count(key)
        return pressure


@dataclass(frozen=True)
class NumericBound:
    """`field <op> other` between two numeric fields of one record (op: <, <=, >, >=)."""

    field: Path
    op: str
    other: Path

    def allows(self, value: float, other: float, final: bool) -> bool:
        """Whether a number being written can still end on the right side of `other`.

        A prefix of a non-negative number only grows as digits are added, so an upper bound
        holds for every prefix; a lower bound is checked only where the number ends."""
        if self.op in ("<", "<="):
            return value < other if (self.op == "<" and final) else value <= other
        if not final:
            return True
        return value > other if self.op == ">" else value >= other


@dataclass
class Steer:
    """What the decoder reads while it writes a record: the counts of each steered field, the
    penalty strength, and the numeric bounds. One per run, shared by every request."""

    strength: float
    fields: dict[Path, FieldCounts] = field(default_factory=dict)
    bounds: list[NumericBound] = field(default_factory=list)
    children: dict[Path, list[tuple[str, FieldCounts]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.children = {}
        for path, counts in self.fields.items():
            if path and path[-1] != "[]":
                self.children.setdefault(path[:-1], []).append((path[-1], counts))

    def under(self, path: Path) -> list[tuple[str, FieldCounts]]:
        """(name, counts) of the steered fields of the object at `path`."""
        return self.children.get(path, [])

    def add_value(self, path: Path, raw: bytes, weight: int = 1) -> None:
        counts = self.fields.get(path)
        if counts is not None:
            counts.add(raw, weight)

    def add_null(self, path: Path, weight: int = 1) -> None:
        counts = self.fields.get(path)
        if counts is not None:
            counts.add_null(weight)

    def add_record(self, record: Any, weight: int = 1, *, example: bool = False) -> None:
        """Count a whole record's values (examples, and records kept by an earlier run); an
        example's fields also set the rate of nulls the run is held to. A field left out
        of an object counts as null, as it does while decoding."""
        leaves = list(_leaves(record, ()))
        for parent, value in _objects(record, ()):
            leaves += [((*parent, name), None) for name, _ in self.under(parent)
                       if name not in value]
        for path, value in leaves:
            counts = self.fields.get(path)
            if counts is None:
                continue
            if value is None:
                counts.add_null(weight)
            elif (raw := raw_value(value)) is not None:
                counts.add(raw, weight)
            if example:
                counts.shown += 1
                counts.shown_nulls += value is None

    def bounds_for(self, path: Path) -> list[NumericBound]:
        return [b for b in self.bounds if b.field == path]


def build_steer(decoding: Any, diversity: float, *, examples: list[dict[str, Any]] = (),
                rules: list[Any] = ()) -> Steer | None:
    """The steer for a run on a constrained decoder (None: nothing to steer)."""
    fields = steered_fields(decoding) if diversity > 0 else []
    bounds = numeric_bounds(rules, numeric_fields(decoding))
    if not fields and not bounds:
        return None
    steer = Steer(strength=MAX_STRENGTH * diversity, bounds=bounds,
                  fields={path: FieldCounts() for path in fields})
    for example in examples:
        steer.add_record(example, EXAMPLE_WEIGHT, example=True)
    return steer


class UsedValues:
    """The steer's stand-in for a backend it cannot reach (an endpoint samples on its own
    side): the run's most used values per free-text field, examples counted EXAMPLE_WEIGHT
    times, named in the next batch's prompt as values to avoid. Weaker than the steer (a
    model may still pick them, and the list is only as fresh as the last batch), but it is
    what a chat API allows; frequency penalties act inside one reply, where the record's keys
    repeat by design, so they are not used."""

    PER_FIELD = 6      # values named per field
    MAX_FIELDS = 8     # fields named (the prompt stays short on wide schemas)
    MAX_CHARS = 60     # longer values are not named (they rarely repeat whole)

    def __init__(self, paths: list[Path], examples: list[dict[str, Any]] = ()) -> None:
        self.counts: dict[Path, Counter[str]] = {p: Counter() for p in paths[:self.MAX_FIELDS]}
        for example in examples:
            self.add(example, EXAMPLE_WEIGHT)

    def add(self, record: Any, weight: int = 1) -> None:
        for path, value in _leaves(record, ()):
            counter = self.counts.get(path)
            if counter is not None and isinstance(value, str) and value.strip():
                counter[value] += weight

    def note(self) -> str:
        """One prompt line naming the most used values, or "" when there are none."""
        parts = []
        for path, counter in self.counts.items():
            top = [v for v, _ in counter.most_common(self.PER_FIELD) if len(v) <= self.MAX_CHARS]
            if top:
                named = ", ".join(json.dumps(v, ensure_ascii=False) for v in top)
                parts.append(f"{'.'.join(path)}: {named}")
        if not parts:
            return ""
        return "Values already used, so write different ones: " + "; ".join(parts) + "\n"

    def to_avoid(self) -> list[str]:
        """The values a reply should not start again: every example's, and any the run has
        made twice. An endpoint that takes a logit bias gets their first tokens pushed down
        (backends/openai.py); the 270M model behind a server otherwise copies an example
        into about half its replies."""
        return [v for counter in self.counts.values()
                for v, n in counter.most_common(self.PER_FIELD * 2) if n >= 2]


def raw_value(value: Any) -> bytes | None:
    """A value as the decoder writes it: a string's JSON contents, a number's digits."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1].encode()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int | float):
        return json.dumps(value).encode()
    return None


def _leaves(value: Any, path: Path):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, (*path, "[]"))
    else:
        yield path, value


def _objects(value: Any, path: Path):
    """(path, object) of every object in a record, itself included."""
    if isinstance(value, dict):
        yield path, value
        for key, item in value.items():
            yield from _objects(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item, (*path, "[]"))


def steered_fields(decoding: Any) -> list[Path]:
    """Paths of the fields worth steering: free strings and numbers with a wide range, and
    the tags of tagged unions (schema/tagged.py: the tag picks the branch, and left to its
    own frequencies a small model writes the first branch every time). Other enums,
    constants, booleans and narrow numbers keep the model's own frequencies."""
    fields = [path for path, schema in _leaves_of(decoding)
              if (_types(schema) & {"number", "integer"} and _wide(schema))
              or ("string" in _types(schema) and schema.get("maxLength", 99) >= 4)]
    return fields + [path for path in _tag_paths(decoding) if path not in fields]


def numeric_fields(decoding: Any) -> list[Path]:
    return [path for path, schema in _leaves_of(decoding)
            if _types(schema) & {"number", "integer"}]


def free_text_fields(decoding: Any) -> list[Path]:
    """String fields whose shape the schema leaves open (no pattern, format or length floor)."""
    return [path for path, schema in _leaves_of(decoding)
            if "string" in _types(schema) and not {"pattern", "format", "minLength"} & set(schema)
            and schema.get("maxLength", 99) >= 4]


def _types(schema: dict[str, Any]) -> set[Any]:
    types = schema.get("type")
    return set(types) if isinstance(types, list) else {types}


MAX_DEPTH = 6   # nested fields steered and checked at most this deep (schemas may recurse)


def _leaves_of(schema: Any) -> list[tuple[Path, dict[str, Any]]]:
    """(path, schema) of every value a record has that is not an object or array; a path
    reached twice (the parts of an anyOf) is kept once. Enums and constants are left out."""
    found: dict[Path, dict[str, Any]] = {}
    for path, node in _reached(schema):
        if (path and "enum" not in node and "const" not in node
                and _types(node) & {"string", "number", "integer"}):
            found.setdefault(path, node)
    return list(found.items())


def _tag_paths(root: Any) -> list[Path]:
    """Paths of the tags of the tagged `oneOf`s a record can hold (at most MAX_DEPTH deep)."""
    from simulacra.schema.tagged import union_tag

    found = {(*path, tag): None for path, node in _reached(root, parents_first=True)
             if (tag := union_tag(root, node)) is not None}
    return list(found)


def _reached(root: Any, parents_first: bool = False) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, schema) of every schema a record's values meet, through `$ref`s and the parts
    of `anyOf`/`oneOf`/`allOf`, at most MAX_DEPTH deep; each schema after the ones it leads
    to, or before them (`parents_first`). A schema met again at the same path
    (`a: anyOf [$ref a, ...]`) is not walked again."""
    from simulacra.schema.model import ref_target

    seen: set[tuple[int, Path]] = set()

    def walk(schema: Any, path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
        if not isinstance(schema, dict) or len(path) > MAX_DEPTH or (id(schema), path) in seen:
            return
        seen.add((id(schema), path))
        if parents_first:
            yield path, schema
        if isinstance(schema.get("$ref"), str):
            yield from walk(ref_target(root, schema["$ref"]), path)
        for key in ("anyOf", "oneOf", "allOf"):
            for part in schema.get(key, []):
                yield from walk(part, path)
        for name, sub in (schema.get("properties") or {}).items():
            yield from walk(sub, (*path, name))
        if isinstance(schema.get("items"), dict):
            yield from walk(schema["items"], (*path, "[]"))
        if not parents_first:
            yield path, schema

    yield from walk(root, ())


def _wide(schema: dict[str, Any]) -> bool:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is None or high is None or schema.get("type") == "number":
        return True
    return high - low >= MIN_WIDE_RANGE


_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def numeric_bounds(rules: list[Any], numeric: list[Path]) -> list[NumericBound]:
    """Both directions of every rule of the form `a <op> b` between two numeric fields (the
    decoder applies whichever one it meets second)."""
    known = set(numeric)
    bounds = []
    for rule in rules:
        body = rule.tree.body
        if not (isinstance(body, ast.Compare) and len(body.ops) == 1 and type(body.ops[0]) in _OPS
                and isinstance(body.left, ast.Name) and isinstance(body.comparators[0], ast.Name)):
            continue
        left = tuple(body.left.id.split("."))
        right = tuple(body.comparators[0].id.split("."))
        if left in known and right in known:
            op = _OPS[type(body.ops[0])]
            bounds += [NumericBound(left, op, right), NumericBound(right, _FLIP[op], left)]
    return bounds

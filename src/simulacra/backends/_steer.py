"""The decoder's side of the diversity steer (engine/diversity.py): where in the record the
next token goes, and what each candidate token would make of the value being written.

`JsonCursor` follows a sequence's JSON bytes (sampled and forced alike) and knows the path of
the value being written and its bytes so far; when a value ends it is handed to the steer, so
the next record, in this batch or a later one, already counts it. `steer_logits` then
penalizes each candidate token by its continuation's share (FieldCounts.pressure) and removes
the candidates that would break a numeric bound. A null, written or left out (a token that
closes the object before a steered field is written), costs its share above the examples'
(FieldCounts.null_pressure).
"""

from __future__ import annotations

import math

import numpy as np

from simulacra.engine.diversity import END, Path, Steer

_NUMBER = frozenset(b"0123456789.eE+-")
_SPACE = frozenset(b" \t\r\n")


class _Frame:
    __slots__ = ("array", "key", "expect_key", "index", "path", "seen")

    def __init__(self, array: bool, path: Path) -> None:
        self.array, self.key, self.expect_key, self.index = array, "", not array, 0
        self.path = path            # where this object or array sits in the record
        self.seen: set[str] = set()   # an object's keys written so far


class JsonCursor:
    """The path and bytes of the JSON value being written (strings and numbers)."""

    def __init__(self, steer: Steer, row: tuple[str, ...] = (), counting: bool = True) -> None:
        self.steer = steer
        self.row = row   # the fields' order when the record is written as a row
        # whether the values written count in the steer as they are written (a spare's are
        # counted only if it is kept: engine/loop.py)
        self.counting = counting
        self.stack: list[_Frame] = []
        self.in_string = self.in_number = self.escape = self.is_key = False
        self.at_value = True          # the next non-space byte starts a value
        self.buf = bytearray()
        self.done: dict[Path, bytes] = {}   # this record's finished values (for bounds)

    def path(self) -> Path:
        """The field path; in a record written as a row (engine/surface.py) the outer
        array's positions are the fields' names."""
        row = self.row
        return tuple(row[f.index] if depth == 0 and f.array and f.index < len(row)
                     else "[]" if f.array else f.key for depth, f in enumerate(self.stack))

    def feed(self, data: bytes) -> None:
        for byte in data:
            self._byte(byte)

    def _byte(self, byte: int) -> None:
        if self.in_string:
            if self.escape:
                self.escape = False
            elif byte == 0x5C:
                self.escape = True
            elif byte == 0x22:
                self.in_string = False
                if self.is_key:
                    key = self.stack[-1].key = self.buf.decode("utf-8", "replace")
                    self.stack[-1].seen.add(key)
                else:
                    self._finish()
                return
            self.buf.append(byte)
            return
        if self.in_number:
            if byte in _NUMBER:
                self.buf.append(byte)
                return
            self.in_number = False
            self._finish()
        if byte in _SPACE:
            return
        top = self.stack[-1] if self.stack else None
        if byte == 0x6E and self.at_value and top is not None and self.counting:   # a null
            self.steer.add_null(self.path())
        self.at_value = False
        if byte == 0x22:
            self.in_string, self.buf = True, bytearray()
            self.is_key = top is not None and not top.array and top.expect_key
        elif byte in _NUMBER:
            self.in_number, self.buf = True, bytearray([byte])
        elif byte in b"{[":
            self.stack.append(_Frame(array=byte == 0x5B, path=self.path()))
            self.at_value = byte == 0x5B          # an array's first item comes next
        elif byte in b"}]":
            if top is not None and not top.array and self.counting:  # a field left out: null
                for name, counts in self.steer.under(top.path):
                    if name not in top.seen:
                        counts.add_null()
            if self.stack:
                self.stack.pop()
        elif byte == 0x3A and top is not None:    # ':' a value comes next
            top.expect_key, self.at_value = False, True
        elif byte == 0x2C and top is not None:    # ',' a key, or an array's next item
            top.expect_key, self.at_value = not top.array, top.array
            top.index += top.array

    def _finish(self) -> None:
        path, raw = self.path(), bytes(self.buf)
        self.done[path] = raw
        if self.counting:
            self.steer.add_value(path, raw)

    def margin(self) -> float:
        """How far below the best token the steer may reach: the most it can penalize a
        continuation of the value being written (0 outside steered values, and once the
        value's prefix is new), plus what closing the object costs, so the decoder gathers
        only candidates it could sample."""
        state = self.value_state()
        counts = self.steer.fields.get(state[0]) if state is not None else None
        value = self.steer.strength * counts.most_pressure(state[1]) if counts else 0.0
        return value + self.closing_cost()

    def closing_cost(self) -> float:
        """What closing the object being written costs now: its steered fields not written
        yet would be left out, which counts as null, so the most any of them would pay for a
        null (FieldCounts.null_pressure). 0 in an array, and when no null is over its share."""
        top = self.stack[-1] if self.stack else None
        if top is None or top.array:
            return 0.0
        most = max((counts.null_pressure() for name, counts in self.steer.under(top.path)
                    if name not in top.seen), default=0.0)
        return self.steer.strength * most

    def value_state(self) -> tuple[Path, bytes, str] | None:
        """(path, bytes so far, "string" | "number" | "open") of the value the next token
        continues; "open": no value started yet, the token may open one. None elsewhere."""
        if self.in_string:
            return None if self.is_key else (self.path(), bytes(self.buf), "string")
        if self.in_number:
            return self.path(), bytes(self.buf), "number"
        if self.at_value and self.stack:
            return self.path(), b"", "open"
        return None


def _continuation(piece: bytes, kind: str) -> tuple[bytes, str] | None:
    """What `piece` adds to the current value, with END if it ends it, and the value's kind
    ("null" for a null, which adds nothing)."""
    if kind == "open":
        piece = piece.lstrip(b" \t\r\n")
        if piece[:1] == b'"':
            piece, kind = piece[1:], "string"
        elif piece[:1] and piece[0] in _NUMBER:
            kind = "number"
        elif piece[:1] == b"n":
            return b"", "null"
        else:
            return None
    end = _value_end(piece, kind)
    return (piece, kind) if end is None else (piece[:end] + END, kind)


def _value_end(piece: bytes, kind: str) -> int | None:
    """Where in `piece` a string (its closing quote) or a number (the first byte that is
    not part of it) being written ends; None if it goes on past the piece."""
    if kind == "string":
        escape = False
        for i, byte in enumerate(piece):
            if escape:
                escape = False
            elif byte == 0x5C:
                escape = True
            elif byte == 0x22:
                return i
        return None
    for i, byte in enumerate(piece):
        if byte not in _NUMBER:
            return i
    return None


def _closes(piece: bytes, kind: str | None) -> bool:
    """Whether `piece`, continuing a value of `kind` ("string", "number", "open"; None: a
    value has just ended), ends that value and then closes the object around it."""
    if kind == "open":
        return False
    start = 0
    if kind is not None:
        end = _value_end(piece, kind)
        if end is None:
            return False
        start = end + (kind == "string")
    return piece[start:].lstrip(b" \t\r\n")[:1] == b"}"


def _number(raw: bytes) -> float | None:
    try:
        return float(raw.rstrip(b".eE+-"))
    except ValueError:
        return None


def steer_logits(cursor: JsonCursor, logits: np.ndarray, ids: np.ndarray, pieces: list[bytes],
                 window: float) -> np.ndarray:
    """`logits` of the candidate tokens `ids`, penalized by the steer; tokens that would
    break a numeric bound get -inf. Only candidates within `window` (plus the penalty) of the
    best are scored: the rest cannot be sampled anyway."""
    state = cursor.value_state()
    closing = cursor.closing_cost()
    if state is None and not closing:
        return logits
    value = _Value.at(cursor, *(state or ((), b"", None)), closing)
    if value is None:
        return logits
    logits = logits.copy()
    reach = window + closing + (value.strength * value.counts.most_pressure(value.prefix)
                                if value.strength else 0.0)
    finite = np.flatnonzero(np.isfinite(logits))
    if not finite.size:
        return logits
    near = finite[logits[finite] >= logits[finite].max() - reach]
    if value.score(logits, ids, pieces, near, window) == -math.inf and near.size < finite.size:
        value.score(logits, ids, pieces, np.setdiff1d(finite, near), window)  # all near broke a bound
    return logits


class _Value:
    """The value being written: its field's counts, the bounds that apply, its bytes so far
    (kind None: a value has just ended), and what closing the object around it costs."""

    def __init__(self, counts, bounds, prefix: bytes, kind: str | None, strength: float,
                 closing: float) -> None:
        self.counts, self.bounds, self.prefix, self.kind = counts, bounds, prefix, kind
        self.strength = strength if counts is not None and counts.values else 0.0
        self.closing = closing

    @classmethod
    def at(cls, cursor: JsonCursor, path: Path, prefix: bytes, kind: str | None,
           closing: float = 0.0) -> _Value | None:
        if kind is None:   # a value has just ended: only closing the object can cost
            return cls(None, [], prefix, None, cursor.steer.strength, closing) \
                if closing else None
        counts = cursor.steer.fields.get(path)
        bounds = [(b, _number(cursor.done[b.other])) for b in cursor.steer.bounds_for(path)
                  if b.other in cursor.done]
        bounds = [(b, other) for b, other in bounds if other is not None]
        if counts is None and not bounds and not closing:
            return None
        return cls(counts, bounds, prefix, kind, cursor.steer.strength, closing)

    def score(self, logits: np.ndarray, ids: np.ndarray, pieces: list[bytes],
              candidates: np.ndarray, window: float) -> float:
        """Penalize (or rule out) `candidates` in place, best first, and return the best
        logit kept. Penalties only lower logits, so once a candidate is more than `window`
        below the best one kept, it and all after it are out of sampling's reach: stop."""
        best_kept = -math.inf
        for j in _best_first(logits, candidates):
            if logits[j] < best_kept - window:
                break
            piece = pieces[int(ids[j])]
            if self.closing and _closes(piece, self.kind):
                logits[j] -= self.closing
            cont = _continuation(piece, self.kind) if self.kind is not None else None
            if cont is not None:
                added, kind = cont
                if self.bounds and kind == "number" and not _bounds_allow(self.bounds,
                                                                          self.prefix + added):
                    logits[j] = -math.inf
                    continue
                if self.strength and kind == "null":
                    logits[j] -= self.strength * self.counts.null_pressure()
                elif self.strength and added:
                    logits[j] -= self.strength * self.counts.pressure(self.prefix, added)
            best_kept = max(best_kept, logits[j])
        return best_kept


FIRST_SORTED = 64   # candidates sorted up front; the loop rarely reaches past them


def _best_first(logits: np.ndarray, candidates: np.ndarray):
    """`candidates` in order of their logits, best first, sorting the long tail (often
    thousands of tokens within the steer's reach) only if the loop gets there."""
    if candidates.size <= FIRST_SORTED:
        yield from candidates[np.argsort(-logits[candidates], kind="stable")]
        return
    values = -logits[candidates]
    head = np.argpartition(values, FIRST_SORTED)[:FIRST_SORTED]
    head = head[np.argsort(values[head], kind="stable")]
    yield from candidates[head]
    rest = np.ones(candidates.size, dtype=bool)
    rest[head] = False
    tail = np.flatnonzero(rest)
    yield from candidates[tail[np.argsort(values[tail], kind="stable")]]


def _bounds_allow(bounds, raw: bytes) -> bool:
    final = raw.endswith(END)
    value = _number(raw[:-1] if final else raw)
    if value is None:   # "-" or "" so far: anything may follow
        return True
    if value < 0 and not final:   # a negative prefix shrinks as digits are added
        return True
    return all(b.allows(value, other, final) for b, other in bounds)

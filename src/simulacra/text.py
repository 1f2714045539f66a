"""`TextWriter`: natural text from field values (the tutorial's part 2), checked for grounding.

    writer = TextWriter(preferences={"style": "informal", "minimal length": 500})
    writer({"fields": {"Actor": "Tom Hanks", "Film": ["Forrest Gump"]}, "preferences": None})
    writer.many([{"Actor": ...}, ...])   # [{"fields": ..., "preferences": ..., "text": ...}]

A text is *grounded* when every field value (each list item too) appears in it, ignoring case,
quote style and spacing. On the embedded model grounding is enforced while decoding (the
values are inserted, each after its field's name, if the model does not write them, and a
field the model names is followed by its own value); on other models a text that misses a
value or is too short is written again, up to `max_attempts`, and what still fails is
reported in `TextResult.missing`, never hidden.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from simulacra.backends.base import Completion, Request
from simulacra.backends.registry import LazyBackend, UsesModel
from simulacra.engine.loop import Ledger, Outcome, RunStats, Try, Verdict, run
from simulacra.errors import UsageError

MIN_LENGTH_KEYS = ("minimal length", "minimum length", "minimal_length", "minimum_length",
                   "min_length", "min length")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})




@dataclass
class TextResult:
    fields: Any
    preferences: dict[str, Any] | None
    text: str
    missing: list[str] = field(default_factory=list)
    too_short: bool = False
    attempts: int = 1

    @property
    def grounded(self) -> bool:
        return not self.missing and not self.too_short

    def as_dict(self) -> dict[str, Any]:
        return {"fields": self.fields, "preferences": self.preferences, "text": self.text}


def field_values(fields: Any) -> list[str]:
    """Every leaf value as the text should show it (list items one by one; floats like 500.0 as 500)."""
    if isinstance(fields, dict):
        return [v for value in fields.values() for v in field_values(value)]
    if isinstance(fields, list | tuple):
        return [v for value in fields for v in field_values(value)]
    if fields is None or isinstance(fields, bool):
        return []
    if isinstance(fields, float) and fields.is_integer():
        return [str(int(fields))]
    text = str(fields).strip()
    return [text] if text else []


def field_labels(fields: Any, label: str = "") -> list[str]:
    """For each of `field_values(fields)`, the words that name it: its key spaced out
    ("total_charge", "totalCharge" -> "total charge"). A list of plain values is named once,
    at its first item ("films Alien, Heat"); values not under a key get ""."""
    if isinstance(fields, dict):
        return [lab for key, value in fields.items()
                for lab in field_labels(value, _spaced_key(str(key)))]
    if isinstance(fields, list | tuple):
        if any(isinstance(value, dict | list | tuple) for value in fields):
            return [lab for value in fields for lab in field_labels(value, label)]
        count = len(field_values(fields))
        return [label][:count] + [""] * (count - 1)
    return [label] * len(field_values(fields))


def _spaced_key(key: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").replace("-", " ")
    return " ".join(words.lower().split())


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.translate(_QUOTES).lower()).strip()


def missing_values(text: str, values: Iterable[str]) -> list[str]:
    """The values that do not appear in `text` (case, quotes and spacing ignored)."""
    haystack = normalize(text)
    return [v for v in values if normalize(v) not in haystack]


def min_length(preferences: dict[str, Any] | None) -> int:
    for key in MIN_LENGTH_KEYS:
        if preferences and key in preferences:
            try:
                return int(preferences[key])
            except (TypeError, ValueError):
                raise UsageError(f"preference '{key}' must be a number of characters, "
                                 f"got {preferences[key]!r}") from None
    return 0


def describe_fields(fields: Any) -> str:
    """Fields as one 'Facts:' line: `Actor: Tom Hanks; Film: Forrest Gump, Green Mile`."""
    if isinstance(fields, dict):
        return "; ".join(f"{k}: {describe_fields(v)}" for k, v in fields.items())
    if isinstance(fields, list | tuple):
        if all(isinstance(f, dict) for f in fields) and fields:
            return " | ".join(describe_fields(f) for f in fields)
        return ", ".join(describe_fields(f) for f in fields)
    return ", ".join(field_values(fields))


def build_prompt(fields: Any, preferences: dict[str, Any] | None) -> str:
    # No demonstration text: the base model copies whatever names it sees into the next text.
    lines = ["Each text below is written from its facts and uses every fact word for word.", "",
             f"Facts: {describe_fields(fields)}"]
    prefs = dict(preferences or {})
    style = prefs.pop("style", None)
    if style:
        lines.append(f"Style: {style}")
    length = min_length(prefs)
    for key in MIN_LENGTH_KEYS:
        prefs.pop(key, None)
    if length:
        lines.append(f"Length: at least {length} characters")
    lines.extend(f"{str(k).capitalize()}: {v}" for k, v in prefs.items() if v not in (None, ""))
    return "\n".join(lines) + "\nText:"


SENTENCE_ENDS = (". ", "! ", "? ")
CLAUSE_ENDS = ("; ", ", ", "\n")


def finish_text(text: str, values: list[str], minimum: int) -> str:
    """Trim a text cut by the token budget back to its last full sentence, or, if that loses
    a value or length, to its last full clause (closed with a period), if it stays grounded
    and long enough. A text that lists fields (`a: 1; b: 2; c:`) has no sentence end to go
    back to, and cut as it is it ends on a field's name without its value."""
    text = text.strip()
    if text.endswith((".", "!", "?", '"')):
        return text
    for ends, closing in ((SENTENCE_ENDS, None), (CLAUSE_ENDS, ".")):
        cut = max(text.rfind(end) for end in ends)
        if cut < 0:
            continue
        trimmed = text[:cut + 1] if closing is None else text[:cut].rstrip(" ,;:") + closing
        if len(trimmed) >= minimum and not missing_values(trimmed, values):
            return trimmed
    return text


class TextTask:
    """Text writing as an engine task: a text that misses a value or is too short is
    rejected and written again; after the last attempt it is handed back as it is."""

    def __init__(self, items: dict[int, Any], preferences: dict[str, Any] | None,
                 temperature: float) -> None:
        self.items = items
        self.preferences = preferences
        self.minimum = min_length(preferences)
        self.temperature = temperature

    def requests(self, tries: list[Try]) -> list[Request]:
        requests = []
        for t in tries:
            values = field_values(self.items[t.index])
            requests.append(Request(
                prompt=build_prompt(self.items[t.index], self.preferences), stop=("\n",),
                must_include=tuple(values), include_labels=tuple(field_labels(self.items[t.index])),
                min_chars=self.minimum,
                max_tokens=(self.minimum + sum(len(v) for v in values)) // 3 + 160,
                temperature=self.temperature, seed=t.seed))
        return requests

    def judge(self, attempt: Try, request: Request, completion: Completion) -> Verdict:
        fields = self.items[attempt.index]
        values = field_values(fields)
        text = finish_text(completion.text, values, self.minimum)
        result = TextResult(fields, self.preferences, text, missing_values(text, values),
                            len(text) < self.minimum, attempt.attempt)
        if result.missing:
            reason = "ungrounded: the text misses " + ", ".join(repr(v) for v in result.missing[:3])
        elif result.too_short:
            reason = f"too short: {len(text)} of at least {self.minimum} characters"
        else:
            return Verdict(value=result, data=result.as_dict())
        return Verdict(reason=reason, fallback=result)


class TextWriter(UsesModel):
    """Writes grounded text from fields with any backend (default: the embedded model)."""

    def __init__(self, model: Any = None, preferences: dict[str, Any] | None = None, *,
                 temperature: float = 0.8, seed: int | None = None, max_attempts: int = 3) -> None:
        self._model = LazyBackend(model)
        self.preferences = preferences
        self.temperature = temperature
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.max_attempts = max_attempts
        self.stats = RunStats()
        self._count = 0

    def write(self, fields: Any, preferences: dict[str, Any] | None = None) -> TextResult:
        """One text for `fields`; `preferences` override the writer's."""
        [result] = self.write_many([fields], preferences)
        return result

    def write_many(self, items: list[Any], preferences: dict[str, Any] | None = None
                   ) -> list[TextResult]:
        """One result per item, in order; a result that stayed ungrounded says what it misses."""
        base = self._count
        results = {o.index - base: o.value for o in self.outcomes(items, preferences)}
        return [results[i] for i in range(len(items))]

    def outcomes(self, items: list[Any], preferences: dict[str, Any] | None = None, *,
                 ledger: Ledger | None = None, done: Iterable[int] = ()) -> Iterable[Outcome]:
        """Each item's outcome as soon as it is settled (index = the item's position among
        every item this writer was given); `done` indices are skipped (a resumed run)."""
        prefs = preferences if preferences is not None else self.preferences
        for i, item in enumerate(items):
            if item is None or item == {} or item == []:
                raise UsageError(f"item #{i + 1} has no fields to write about")
        min_length(prefs)  # a bad length preference fails before anything runs
        base, self._count = self._count, self._count + len(items)
        task = TextTask({base + i: item for i, item in enumerate(items)}, prefs, self.temperature)
        yield from run(self.backend, task, range(base, base + len(items)), seed=self.seed,
                       max_attempts=self.max_attempts, stats=self.stats, ledger=ledger,
                       done=(base + i for i in done))

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The tutorial's chain call: {"fields": ..., "preferences": ...} -> that plus "text"."""
        if not isinstance(inputs, dict) or "fields" not in inputs:
            raise UsageError('expected {"fields": ..., "preferences": ...}')
        result = self.write(inputs["fields"], inputs.get("preferences"))
        return {**inputs, "text": result.text}

    def many(self, items: list[Any]) -> list[dict[str, Any]]:
        """The tutorial's DatasetGenerator shape: [{"fields", "preferences", "text"}, ...]."""
        return [r.as_dict() for r in self.write_many(items)]

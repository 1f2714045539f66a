"""`Extractor`: records back from text (the tutorial's part 3).

    Extractor(Actor).extract(text)            -> Actor(...)
    Extractor(Actor).extract_many(text)       -> [Actor(...), ...]

Routes, best first, by what the backend can do:

- *grammar* (embedded model): constrained decoding against the schema, and **extractive**:
  every free string value must be a span of the source text and every number one written in
  it (digits, or the words zero to twelve), so the model can copy but not invent (measured
  on this model: most wrong values were absent from the text or copied from examples).
  A field opts out with `json_schema_extra={"x-extractive": False}`, e.g. a normalized date.
  Every property is required while decoding (null where the type allows it): the small model
  otherwise closes the object at once and every optional field comes back empty. The spans
  offered and the numbers are in `extract_spans.py`; what the user's labelled examples and
  field descriptions teach (carrier words never offered, which field a value belongs to) is
  in `extract_cues.py` and applied to every reply.
- *json_schema* (endpoints): the schema as the response format.
- *prompt*: format instructions and a tolerant parser (code fences, prose, single quotes).

Every reply is validated; an invalid one is retried with the error, bounded. With two or
more labelled examples on the embedded model, each text is read twice, the second time with
the examples in another order, and an optional value the two readings do not agree on is
dropped (`cross_check`): the small model's wrong values are unstable, its right ones are not.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from simulacra.backends.base import Completion, Request
from simulacra.backends.registry import LazyBackend, UsesModel
from simulacra.engine.loop import Ledger, Outcome, RunStats, Try, Verdict, failure_reason, run
from simulacra.errors import GenerationError, UsageError
from simulacra.extract_cues import Carriers, FieldLexicon
from simulacra.extract_spans import EDGE, extractive_schema, text_numbers, text_spans
from simulacra.parse import ReplyParseError, parse_reply
from simulacra.schema import RecordInvalid, Schema, load_schema
from simulacra.schema.model import SPAN_STRING, longest_lists, subschemas
from simulacra.text import field_values

__all__ = ["Carriers", "Extractor", "FieldLexicon", "extractive_schema", "text_numbers",
           "text_spans"]

# Logits taken from every token that starts `null` where the grammar allows a value or null:
# the 270M model otherwise answers null for most optional fields. Zero-shot it needs a strong
# push (slot F1 0.00 on the labelled set without one); with labelled examples, whose nulls
# teach absence, a milder one (chosen on SNIPS train queries, never the validate ones:
# 1, 2 and 3 gave mean F1 0.570, 0.572, 0.572 with 10 examples; 0 lost recall everywhere).
NULL_PENALTY = 4.0
EXAMPLE_NULL_PENALTY = 2.0
# With examples, values the decoder chose with less than this probability become null:
# on the same train queries 0.4 raised F1 on all six intents (0.712 -> 0.743 on the first).
EXAMPLE_MIN_CONFIDENCE = 0.4
MAX_EXAMPLES_SHOWN = 10   # labelled examples in one prompt; more are chosen from by similarity
NEAREST = 2               # the most similar examples, repeated right before the text
MAX_RECORDS = 5
# Texts read per round of a cross-checked run: both readings of a round are batched, and its
# results are yielded before the next round starts.
CROSS_CHECK_ROUND = 64


def require_all(node: Any) -> None:
    """Make every property required (in place), so the model states each field, null or not,
    instead of closing the object at once (which the 270M model does for optional fields)."""
    if not isinstance(node, dict):
        return
    if isinstance(node.get("properties"), dict):
        node["required"] = list(node["properties"])
    for sub in subschemas(node):
        require_all(sub)

class Extractor(UsesModel):
    """Extracts records of `schema` from text with any backend (default: the embedded model).

    Args:
        examples: (text, record) pairs shown to the model before the text.
        extractive: constrain free strings to spans of the text (grammar backends only).
        cross_check: read each text a second time with the examples in another order and
            drop the optional values the readings disagree on. Default: on with two or more
            examples on a grammar backend (the embedded model), where it costs a second
            decode per text; off for endpoints, where it would cost a second request.
    """

    def __init__(self, schema: Any, model: Any = None, *, examples: list[tuple[str, Any]] = (),
                 extractive: bool = True, temperature: float = 0.0, seed: int = 0,
                 max_attempts: int = 2, null_penalty: float | None = None,
                 spans_once: bool = True, min_confidence: float | None = None,
                 cross_check: bool | None = None) -> None:
        self.schema: Schema = load_schema(schema)
        self.examples = [self._example(i, text, rec) for i, (text, rec) in enumerate(examples)]
        self.carriers = Carriers(self.examples)
        self.lexicon = FieldLexicon(self.schema, self.examples)
        # a list as long as the labelled examples' longest (else the decoder's default bound)
        self.list_lengths = longest_lists(record for _, record in self.examples)
        self._model = LazyBackend(model)
        self.extractive = extractive
        self.temperature = temperature
        self.seed = seed
        self.max_attempts = max_attempts
        # Labelled examples show the model when a field is absent (their nulls), so the push
        # away from null that zero-shot extraction needs would only invent values.
        self.null_penalty = null_penalty if null_penalty is not None else (
            EXAMPLE_NULL_PENALTY if self.examples else NULL_PENALTY)
        self.spans_once = spans_once
        if min_confidence is None:
            min_confidence = EXAMPLE_MIN_CONFIDENCE if self.examples else 0.0
        if not 0 <= min_confidence <= 1:
            raise UsageError(f"min_confidence must be between 0 and 1, got {min_confidence}")
        self.min_confidence = min_confidence
        self.cross_check = cross_check
        self.stats = RunStats()
        self._count = 0

    def _example(self, i: int, text: Any, record: Any) -> tuple[str, dict[str, Any]]:
        """A labelled pair, checked before any model loads."""
        if not isinstance(text, str) or not text.strip():
            raise UsageError(f"example #{i + 1} has no text")
        try:
            data = record if isinstance(record, dict) else self.schema.dump(record)
            return text, self.schema.dump(self.schema.validate(data))
        except RecordInvalid as exc:
            raise UsageError(f"example #{i + 1}'s record does not match {self.schema.name}: "
                             f"{exc.errors[0]}") from None

    # -- prompt and schema ---------------------------------------------------------------
    def prompt(self, text: str, many: bool, *, second: bool = False) -> str:
        what = f"every {self.schema.name} record" if many else f"the {self.schema.name} record"
        lines = [f"Extract {what} from the text as JSON, copying values word for word from "
                 "the text.", "Fields:"]
        for f in self.schema.fields:
            desc = f": {f.description}" if f.description else ""
            lines.append(f"- {f.name} ({f.type.replace(' or null', '')}){desc}")
        lines.append("")
        for example_text, record in self.examples_for(text, second=second):
            shown = [record] if many else record
            lines += [f"Text: {_one_line(example_text)}", f"JSON: {json.dumps(shown)}", ""]
        lines.append(f"Text: {_one_line(text)}")
        return "\n".join(lines) + "\nJSON: "

    def examples_for(self, text: str, *, second: bool = False) -> list[tuple[str, Any]]:
        """The labelled examples shown before `text`. Up to MAX_EXAMPLES_SHOWN in a fixed
        order, a prefix every input shares (computed once in the KV cache); from a larger
        pool, the ones most similar by word overlap (rapidfuzz). Then the NEAREST most similar
        again, right before the text, the only per-input cost: a query phrased like an
        example ("Is X playing") is answered like it. The `second` reading of a cross-check
        shows the same examples with the second half of the fixed order first."""
        from rapidfuzz import fuzz

        if not self.examples:
            return []
        similarity = [fuzz.token_set_ratio(text.lower(), t.lower()) for t, _ in self.examples]
        ranked = sorted(range(len(self.examples)), key=lambda i: similarity[i])
        shared = (list(range(len(self.examples))) if len(self.examples) <= MAX_EXAMPLES_SHOWN
                  else sorted(ranked[-MAX_EXAMPLES_SHOWN:]))
        if second:
            shared = shared[len(shared) // 2:] + shared[:len(shared) // 2]
        return [self.examples[i] for i in shared + ranked[len(ranked) - NEAREST:]]

    def decoding_schema(self, text: str, many: bool) -> dict[str, Any]:
        js = self.schema.decoding_schema(max_string=SPAN_STRING, list_lengths=self.list_lengths)
        require_all(js)
        if self.extractive and self.backend.capabilities.grammar:
            spans = self.carriers.offered(text_spans(text), text)
            js = extractive_schema(js, spans, text_numbers(text))
        if many:
            defs = {k: js.pop(k) for k in ("$defs", "definitions") if k in js}
            js = {"type": "array", "items": js, "minItems": 1, "maxItems": MAX_RECORDS, **defs}
        return js

    # -- extraction ----------------------------------------------------------------------
    def extract(self, text: str) -> Any:
        """The record in `text`; raises GenerationError when every attempt was rejected."""
        [result] = self.extract_batch([text], many=False)
        if isinstance(result, Exception):
            raise result
        return result

    def extract_many(self, text: str) -> list[Any]:
        """Every record in `text` (at least one); raises GenerationError like `extract`."""
        [result] = self.extract_batch([text], many=True)
        if isinstance(result, Exception):
            raise result
        return result

    __call__ = extract

    def extract_batch(self, texts: list[str], *, many: bool = False) -> list[Any]:
        """One result per text, in order: a record (or list with `many`), or the
        GenerationError that ended it (its `errors` hold the last rejection)."""
        base = self._count
        results = {}
        for outcome in self.outcomes(texts, many=many):
            results[outcome.index - base] = outcome.value if outcome.ok else GenerationError(
                f"text {outcome.index}: {outcome.reason}", attempts=outcome.attempts,
                last_output=outcome.last_output, errors=[outcome.reason])
        return [results[i] for i in range(len(texts))]

    def outcomes(self, texts: list[str], *, many: bool = False, ledger: Ledger | None = None,
                 done: Iterable[int] = ()) -> Iterator[Outcome]:
        """Each text's outcome as soon as it is settled (index = the text's position among
        every text this extractor was given); `done` indices are skipped (a resumed run)."""
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise UsageError(f"text #{i + 1} is empty; there is nothing to extract from")
        base, self._count = self._count, self._count + len(texts)
        numbered = {base + i: t for i, t in enumerate(texts)}
        task = ExtractTask(self, numbered, many)
        skip = {base + i for i in done}
        if not self._cross_checks(many):
            yield from run(self.backend, task, numbered, seed=self.seed,
                           max_attempts=self.max_attempts, stats=self.stats, ledger=ledger,
                           done=skip)
            return
        second = ExtractTask(self, numbered, many, second=True)
        todo = [i for i in numbered if i not in skip]
        rows: dict[int, dict[str, Any]] = {}   # ledger rows of the first readings
        for start in range(0, len(todo), CROSS_CHECK_ROUND):
            first = list(run(self.backend, task, todo[start:start + CROSS_CHECK_ROUND],
                             seed=self.seed, max_attempts=self.max_attempts, stats=self.stats,
                             ledger=lambda row: rows.__setitem__(row["index"], row)))
            check_stats = RunStats()
            read = [o.index for o in first if o.ok]
            checks = {o.index: o for o in run(self.backend, second, read, seed=self.seed,
                                              max_attempts=1, stats=check_stats)}
            self.stats.attempts += check_stats.attempts
            self.stats.tokens_in += check_stats.tokens_in
            self.stats.tokens_out += check_stats.tokens_out
            self.stats.seconds = time.perf_counter() - self.stats.started
            for outcome in first:
                outcome, note = self._agreed(outcome, checks.get(outcome.index))
                if ledger is not None:
                    ledger({**rows.pop(outcome.index), **note})
                yield outcome

    def _cross_checks(self, many: bool) -> bool:
        if many or len(self.examples) < 2:
            return False   # records of a list have no field-by-field counterpart to agree on
        if self.cross_check is not None:
            return self.cross_check
        return self.backend.capabilities.grammar

    def _agreed(self, outcome: Outcome, check: Outcome | None) -> tuple[Outcome, dict]:
        """`outcome` without the optional values its second reading does not state alike
        (a list keeps the items both state), and the ledger's account of it. A failed
        second reading says nothing: the first stands."""
        if not outcome.ok or check is None or not check.ok:
            return outcome, {"second_reading": None}
        data, dropped = agreed_fields(self.lexicon, outcome.data, check.data)
        try:
            value = self.schema.validate(data)
        except RecordInvalid:   # e.g. a list left shorter than its minItems: keep the first
            return outcome, {"second_reading": check.data, "dropped": []}
        agreed = dataclasses.replace(outcome, value=value, data=self.schema.dump(value))
        return agreed, {"second_reading": check.data, "dropped": dropped}

    def _span_once(self, record: Any, confidence: dict[str, float] | None = None) -> Any:
        fields = self.schema.fields
        return _span_once_fields(record, {f.name for f in fields if "null" in f.type},
                                 {f.name for f in fields if not f.required}, confidence or {})

    def _drop_weak(self, record: Any, confidence: dict[str, float]) -> Any:
        """Values the decoder chose with less than `min_confidence` become null (optional,
        not nullable: left out); required fields keep theirs, and so does a field whose
        description or examples name its value (the decoder and the user agree)."""
        if not self.min_confidence or not isinstance(record, dict):
            return record
        out = dict(record)
        for f in self.schema.fields:
            weak = (out.get(f.name) is not None and not self.lexicon.knows(f.name, out[f.name])
                    and confidence.get(f.name, 1.0) < self.min_confidence)
            if weak and f.name in self.lexicon.nullable | self.lexicon.optional:
                self.lexicon.clear(out, f.name)
        return out

    def accept(self, reply: str, many: bool, confidence: dict[str, float] | None = None,
               text: str = "") -> Any:
        """The record(s) in a reply; raises ReplyParseError or RecordInvalid. Values widen
        to the longer value or time phrase around them, go to the field that knows them, and
        empty fields take the phrases only they know (`FieldLexicon`); `confidence` (a single
        record's, per field) drops weak values and decides which field keeps a span two
        fields state, or one inside another's; list items are put in the order `text`
        states them."""
        data = parse_reply(reply, expect=list if many else dict)
        data = [_distinct_strings(d) for d in data] if many else _distinct_strings(data)
        if text:
            data = [_text_order(d, text) for d in data] if many else _text_order(data, text)
        if self.spans_once:
            data = [self._span_once(d) for d in data] if many else self._span_once(data,
                                                                                  confidence)
        data = [self.lexicon.widen(d, text) for d in data] if many else self.lexicon.widen(
            data, text)
        if many:
            data = [self.lexicon.trim(self.lexicon.settle(d, {}, text)[0]) for d in data]
            # the same record found twice is one record
            data = list({json.dumps(d, sort_keys=True): d for d in data}.values())
        else:
            data, confidence = self.lexicon.settle(data, confidence or {}, text)
            data = self.lexicon.unnest(data, confidence)
            data = self._drop_weak(data, confidence) if confidence else data
            data = self.lexicon.trim(self.lexicon.whole_names(data, text))
            data = self.lexicon.fill(data, text) if text else data
        return ([self.schema.validate(item) for item in data] if many
                else self.schema.validate(data))


def agreed_fields(lexicon: FieldLexicon, first: dict[str, Any], second: dict[str, Any]
                  ) -> tuple[dict[str, Any], list[str]]:
    """The values of `first` that `second` states alike (strings compared case-blind, a list
    cut to the items both hold); a disagreeing optional field is emptied (`lexicon.clear`).
    A required field keeps its value, and so does one whose value the lexicon knows (named
    by its description or examples: the user vouches for it). Returns it with the names of
    the fields that lost something."""
    out, dropped = dict(first), []
    for name, mine in first.items():
        if mine is None or name not in lexicon.optional or lexicon.knows(name, mine):
            continue
        kept = _alike(mine, second.get(name))
        if kept == mine:
            continue
        dropped.append(name)
        if kept is not None:
            out[name] = kept
        else:
            lexicon.clear(out, name)
    return out, dropped


def _alike(mine: Any, theirs: Any) -> Any:
    """`mine` if `theirs` states it too, the common items of two lists, else None."""
    def key(value: Any) -> str:
        return value.strip().casefold() if isinstance(value, str) else json.dumps(
            value, sort_keys=True)

    if isinstance(mine, list) and isinstance(theirs, list):
        theirs_keys = {key(item) for item in theirs}
        common = [item for item in mine if key(item) in theirs_keys]
        return common or None
    return mine if theirs is not None and key(mine) == key(theirs) else None


def _span_once_fields(record: Any, nullable: set[str], optional: set[str],
                      confidence: dict[str, float] | None = None) -> Any:
    """Keep a string value in the field the decoder was surest of (the first that states it,
    without confidences); the others get null (or lose the key, if optional but not
    nullable). The small model copies one span ("Tahquamenon Falls") into city, state and
    country alike, where a text states a value once, for one field. Required fields keep
    their value."""
    if not isinstance(record, dict):
        return record
    seen: set[str] = set()
    out = dict(record)
    order = sorted(record, key=lambda name: -(confidence or {}).get(name, 0.0))
    for name in order:
        value = record[name]
        if not isinstance(value, str) or not value.strip():
            continue
        key = value.strip().casefold()
        if key in seen and name in nullable:
            out[name] = None
        elif key in seen and name in optional:
            del out[name]
        seen.add(key)
    return _without_neighbours(out, confidence or {})


def _without_neighbours(record: dict[str, Any], confidence: dict[str, float]) -> dict[str, Any]:
    """A string value that starts or ends with another field's value loses it when the
    decoder was surer of that other value: a word of the text belongs to one value, and the
    small model runs a span into its neighbour ("2 trail running shoes" beside the quantity
    2), but "Air Canada" stays whole beside a less sure origin "Canada". Without
    confidences (an endpoint, several records) nothing says which is right: nothing is cut."""
    others = {name: written[0] for name, v in record.items()
              if isinstance(v, str | int | float) and (written := field_values(v))}
    out = dict(record)
    for name, value in record.items():
        if not isinstance(value, str):
            continue
        trimmed = value
        for other, written in others.items():
            if (other == name or written.casefold() == trimmed.casefold()
                    or confidence.get(other, 0.0) <= confidence.get(name, 0.0)):
                continue
            if trimmed.casefold().startswith(written.casefold() + " "):
                trimmed = trimmed[len(written):].strip(EDGE)
            elif trimmed.casefold().endswith(" " + written.casefold()):
                trimmed = trimmed[:-len(written)].strip(EDGE)
        if trimmed:
            out[name] = trimmed
    return out


class ExtractTask:
    """Extraction as an engine task: one request per text, the reply parsed and validated."""

    def __init__(self, extractor: Extractor, texts: dict[int, str], many: bool, *,
                 second: bool = False) -> None:
        self.extractor = extractor
        self.texts = texts
        self.many = many
        self.second = second   # the cross-check's reading, examples in another order

    def requests(self, tries: list[Try]) -> list[Request]:
        x = self.extractor
        return [Request(
            prompt=x.prompt(self.texts[t.index], self.many, second=self.second),
            json_schema=x.decoding_schema(self.texts[t.index], self.many),
            max_tokens=768 if self.many else 384, temperature=x.temperature, seed=t.seed,
            stop=("\n",), feedback=t.feedback,
            extra={"confidence": True, "null_bias": -x.null_penalty},
        ) for t in tries]

    def judge(self, attempt: Try, request: Request, completion: Completion) -> Verdict:
        reason = failure_reason(completion)
        if reason:
            return Verdict(reason=reason)
        schema = self.extractor.schema
        confidence = field_confidence(completion.text, completion.probs) \
            if completion.probs and not self.many else {}
        note = {"confidence": confidence} if confidence else {}
        try:
            found = self.extractor.accept(completion.text, self.many, confidence,
                                          text=self.texts[attempt.index])
        except ReplyParseError as exc:
            return Verdict(reason=f"parse: {exc}", note=note)
        except RecordInvalid as exc:
            return Verdict(reason="invalid: " + "; ".join(exc.errors[:3]), note=note)
        data = [schema.dump(r) for r in found] if self.many else schema.dump(found)
        return Verdict(value=found, data=data, note=note)


def field_confidence(text: str, probs: list[tuple[int, float]]) -> dict[str, float]:
    """Per top-level field of the JSON object in `text`: the probability the decoder gave
    its value (or its null), the product of the chosen tokens' probabilities from just after
    the field's colon to the value's end (`probs`: byte offset, probability). Forced tokens
    were certain; a value with no choice in it has confidence 1."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    i = text.find("{") + 1
    try:
        while 0 < i < len(text):
            while i < len(text) and text[i] in " \t\n\r,":
                i += 1
            if i >= len(text) or text[i] == "}":
                break
            key, i = decoder.raw_decode(text, i)
            colon = text.index(":", i) + 1
            start = colon + len(text[colon:]) - len(text[colon:].lstrip())
            _, i = decoder.raw_decode(text, start)
            spans[str(key)] = (len(text[:colon].encode()), len(text[:i].encode()))
    except (ValueError, json.JSONDecodeError):
        return {}
    return {key: round(math.prod(p for offset, p in probs if lo <= offset < hi), 4)
            for key, (lo, hi) in spans.items()}


def _each_string_list(value: Any, fix: Callable[[list[str]], list[str]]) -> Any:
    """`value` with `fix` applied to every list of strings in it, however deep."""
    if isinstance(value, dict):
        return {k: _each_string_list(v, fix) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return fix(value)
    if isinstance(value, list):
        return [_each_string_list(v, fix) for v in value]
    return value


def _distinct_strings(value: Any) -> Any:
    """Drop repeated strings from lists (case-insensitive): a text mentions a film once or
    five times, but it is one film. The small model otherwise pads lists with repeats."""
    def distinct(items: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for v in items:
            seen.setdefault(v.casefold(), v)
        return list(seen.values())

    return _each_string_list(value, distinct)


def _text_order(value: Any, text: str) -> Any:
    """Lists of strings sorted by where the text first states each item (items it does not
    state keep their place at the end): the model lists films as it recalls them, the
    text is the order a reader expects."""
    folded = text.casefold()

    def place(item: tuple[int, str]) -> tuple[int, int]:
        at = folded.find(item[1].casefold())
        return (at if at >= 0 else len(text), item[0])

    return _each_string_list(value, lambda items: [v for _, v in sorted(enumerate(items),
                                                                         key=place)])


def _one_line(text: str) -> str:
    return " ".join(text.split())

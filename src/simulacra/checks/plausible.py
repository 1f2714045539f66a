"""The plausibility gate: values that the schema allows but no real data set holds.

A small model that runs out of ideas writes `"N/A"`, `"a"`, `":{"` or the product's name
again as its title. Those records are valid, and useless. The gate rejects them (the engine
retries the record) and names the reason, counted in the summary and the ledger:

- `implausible short`: an empty or one-character value in a free-text field (unless its name
  says one character is usual: an initial, a grade, a size, a code; a code is never empty);
- `implausible punctuation`: JSON punctuation inside a value (`":{"`, `"}, {"`), or a value
  with no letter or digit at all;
- `implausible placeholder`: "N/A", "unknown", "test", "lorem ipsum", an identifier
  (`product_name`), only words of the schema's own field names ("Product Reviews"), or a
  whole value in brackets: a template's slot ("{firstname}"), a description of the field
  ("(the customer's full name)"), a markdown link;
- `implausible repeat`: one value in two different text fields of the record (word for
  word: punctuation and case aside), or a word twice in a row within a value ("Doe Doe");
- `implausible no letters`: a number where text is due ("38507203405" as a product), in a
  field whose name is not a code's (id, number, code, phone, zip...);
- `implausible echo`: the prompt read back (the schema's own name inside a value);
- `implausible edge`: a value that ends with a comma: the model stopped inside a list it
  was writing ("Meryl Streep (1997), " as an actor's name). A trailing space alone is let
  be, and so are a semicolon and leading white space (a statement of code ends with one,
  and code may be indented);
- `implausible cut`: a value as long as the bound the decoder gives a string whose schema
  sets none (MAX_STRING): the model ran on past every sentence end and was cut mid-word;
- `implausible key`: a key the schema does not name (an additional or pattern property) with
  no letter or digit in it: given `additionalProperties`, the model writes `{":": " and "}`;
- `implausible empty`: a record with no value at all (`{}`, every field null or an empty
  object or list) where the schema names fields. A third of real-world schemas leave every
  property optional (JSONSchemaBench: 67 of 201), and there `{}` is valid and says nothing.

Apart from `empty`, only free-text fields are checked (no enum, const, pattern or format:
where the schema pins a value's shape, the shape is right by definition), and a check is
skipped for a field where an example does the same thing (an example with a one-letter
grade makes "B" plausible).
"""

from __future__ import annotations

import re
from typing import Any

from simulacra.engine.diversity import Path, _leaves_of, free_text_fields
from simulacra.schema.model import MAX_STRING, property_names

PLACEHOLDERS = frozenset({
    "n/a", "na", "n.a.", "null", "nil", "undefined", "unknown", "test", "testing",
    "tbd", "todo", "xxx", "xx", "x", "placeholder", "lorem ipsum", "string", "text", "sample",
    "example", "foo", "bar", "baz", "asdf", "abc", "value", "default", "empty", "blank", "...",
})
# a quote beside JSON punctuation, or the seam between two objects or arrays ("Tim},{")
_JSON_BITS = re.compile(r'"\s*[:,{}\[\]]|[:,{}\[\]]\s*"|[}\]]\s*,|,\s*[{\[]')
_IDENTIFIER = re.compile(r"^[A-Za-z][a-z0-9]*(_[A-Za-z0-9]+)+$")   # product_name, Review_Title
_STUTTER = re.compile(r"\b(\w{2,})\s+\1\b", re.UNICODE)
# fields whose values are often one character: an initial, a grade, a size, a sex
_SHORT_NAME = re.compile(r"(^|_)(initials?|grade|letter|gender|sex|size|unit|class|tier|level|"
                         r"rank|symbol|flag|suffix|prefix|sign|mark|band|terminator|separator|"
                         r"delimiter|char|character|quote|escape|indent)$", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_CODE_NAME = re.compile(r"(^|_)(id|ids|code|codes|number|no|num|zip|postcode|postal|phone|tel|fax|"
                        r"sku|isbn|ean|upc|version|year|date|time|amount|price|count|score|port|"
                        r"hash|checksum|uuid|hex|ip)$|"
                        r"(?-i:Id|Code|Number|Date|Time|Port|Version)$", re.IGNORECASE)   # camelCase: orderId
_WORDISH = re.compile(r"\w", re.UNICODE)
_WORD_RUN = re.compile(r"\w+", re.UNICODE)
# a whole value in brackets: a template's slot ("{firstname}", "{{ city }}", "<name>"), a
# description of the field ("(the customer's full name)"), a link ("[name](https://...)"),
# or only such slots side by side ("{{value}} {{user.username}}")
_ONE_SLOT = r"(\{\{?[^{}]*\}\}?|\([^()]*\)|\[[^\[\]]*\](\([^()]*\))?|<[^<>]*>)"
_SLOT = re.compile(rf"^{_ONE_SLOT}([\s,;]*{_ONE_SLOT})*[,.;:]?$")


class PlausibilityGate:
    def __init__(self, decoding: Any, examples: list[dict[str, Any]] = ()) -> None:
        self.fields = free_text_fields(decoding)
        # fields bounded by the decoder's default, not by the schema: reaching it is a cut
        self._cut_at = {path for path, node in _leaves_of(decoding)
                        if node.get("maxLength") == MAX_STRING} & set(self.fields)
        # the stemmed words of the schema's field names and title: a value made only of
        # them names a field rather than filling it ("Product Reviews")
        self.field_words = {_stem(w) for path in self.fields for key in path
                            for w in _words(key).split()}
        title = str(decoding.get("title", "")) if isinstance(decoding, dict) else ""
        self.field_words |= {_stem(w) for w in _words(title).split()}
        self._echo = title if len(title) >= 4 else None
        self._named_fields = isinstance(decoding, dict) and bool(decoding.get("properties"))
        self._named_keys = property_names(decoding)
        self._exempt: set[tuple[str, Path]] = set()
        for example in [*examples, *_schema_values(decoding, self.fields)]:
            for reason, path in self._problems(example):
                self._exempt.add((reason, path))

    def reason(self, record: dict[str, Any]) -> str | None:
        """None, or "implausible <kind>: <field> ..." for the record's first problem."""
        for kind, path in self._problems(record):
            if (kind, path) not in self._exempt:
                if kind == "empty":
                    return "implausible empty: the record has no value in any field"
                if kind == "key":
                    return f"implausible key: {path[-1]!r} names no field"[:200]
                value = value_at(record, path)
                return f"implausible {kind}: {'.'.join(path)} is {value!r}"[:200]
        return None

    def _problems(self, record: dict[str, Any]):
        if self._named_fields and isinstance(record, dict) and not filled_values(record):
            yield "empty", ()
        for key in _keys(record):
            if not _WORDISH.search(key) and key not in self._named_keys:
                yield "key", (key,)
                break
        seen: dict[str, Path] = {}
        for path in self.fields:
            value = value_at(record, path)
            if not isinstance(value, str):
                continue
            text = value.strip()
            short_named = bool(_SHORT_NAME.search(_snake(path[-1])))   # a separator, a grade
            code_named = bool(_CODE_NAME.search(path[-1]))
            if len(text) <= 1:
                # a code may be one character ("7", "B"), never none at all; a separator or
                # a prefix may be empty
                if not (short_named or (text and code_named)):
                    yield "short", path
            elif is_punctuation(text) and not short_named:
                yield "punctuation", path   # a prefix or separator may be "//"
            elif self._placeholder(text) or (_SLOT.match(text) and not short_named):
                yield "placeholder", path   # a separator may be "<br>" or "()"
            elif not _LETTER.search(text) and not (code_named or short_named):
                yield "no letters", path
            elif self._echo and self._echo in text:
                yield "echo", path
            elif path in self._cut_at and len(value) >= MAX_STRING:
                yield "cut", path
            elif text.endswith(",") and not short_named:
                yield "edge", path   # a separator may be a comma
            folded = text.casefold()
            # compared word by word: the same sentence in two fields, one with a final
            # period and one without, is the same value
            same = " ".join(_WORD_RUN.findall(folded)) or folded
            if len(folded) > 1 and same in seen or _STUTTER.search(folded):
                yield "repeat", path
            seen.setdefault(same, path)

    def _placeholder(self, text: str) -> bool:
        if text.lower().strip(" .!?") in PLACEHOLDERS or _IDENTIFIER.match(text):
            return True
        return self.only_field_words(text)

    def only_field_words(self, text: str, also: frozenset[str] = frozenset()) -> bool:
        """Whether `text` has words and all are words of the schema's field names or title
        (or of `also`), compared stemmed and lower-case."""
        words = _words(text).split()
        return bool(words) and all(_stem(w) in self.field_words or w in also for w in words)


def is_punctuation(text: str) -> bool:
    """A bit of JSON inside a value (`":{"`, `"}, {"`), or characters with no letter or digit
    among them: what the model writes when it meant to close the object."""
    return bool(_JSON_BITS.search(text) or (text and not _WORDISH.search(text)))


def _keys(value: Any):
    """Every object key in a record, at any depth."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


def filled_values(value: Any) -> int:
    """The values in `value` other than null, an empty object or an empty list (`{}`: 0)."""
    if isinstance(value, dict):
        return sum(filled_values(v) for v in value.values())
    if isinstance(value, list):
        return sum(filled_values(v) for v in value)
    return int(value is not None)


def _schema_values(decoding: Any, fields: list[Path]) -> list[dict[str, Any]]:
    """The values a schema itself states for its free-text fields (`default`, `examples`),
    each as a one-field record: what the schema's author wrote is never implausible (a
    separator whose default is "" or ";")."""
    wanted, records = set(fields), []
    for path, schema in _leaves_of(decoding):
        if path not in wanted:
            continue
        stated = [schema.get("default"), *(schema.get("examples") or [])] \
            if isinstance(schema.get("examples", []), list) else [schema.get("default")]
        for value in stated:
            if isinstance(value, str):
                record: dict[str, Any] = {}
                inner = record
                for key in path[:-1]:
                    inner = inner.setdefault(key, {})
                inner[path[-1]] = value
                records.append(record)
    return records


def _snake(name: str) -> str:
    """startImportBlockSign -> start_import_block_sign (names are matched word by word)."""
    return "_".join(_words(name).split())


def _stem(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", text).lower()))


def value_at(record: Any, path: Path) -> Any:
    """The value at a path of top-level and nested object keys (None across arrays)."""
    value = record
    for key in path:
        if key == "[]" or not isinstance(value, dict):
            return None
        value = value.get(key)
    return value

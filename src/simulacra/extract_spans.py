"""The extractive vocabulary: what a value extracted from a text may be. Free strings are
spans of the text (runs of words inside one clause), numbers are the ones it writes; the
decoding schema lists them as enums, so the model can copy but not invent."""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from simulacra.schema.model import subschemas

MAX_SPAN_WORDS = 8
EDGE = " \t\n.,;:!?\"'()[]{}\u201c\u201d\u2018\u2019"
# Where a clause ends: ; ! ? or a comma not before a number, or a period that does not end
# an abbreviation: not after an initial or a short capitalized word ("T.", "Dr.", "Dec."),
# not after a word with a period inside ("a.m."), not before a lowercase word or a digit.
_CLAUSE_END = re.compile(r"[;!?]\s+|,\s+(?!\d)|(?<!\b[A-Z])(?<!\b[A-Z][a-z])(?<!\b[A-Z][a-z]{2})"
                         r"(?<!\.[A-Za-z])\.\s+(?![a-z0-9])")


def text_spans(text: str, max_words: int = MAX_SPAN_WORDS, max_chars: int = 120) -> list[str]:
    """Every run of 1..max_words words inside one clause of `text`, trimmed of edge punctuation.

    Spans do not cross a comma, semicolon or sentence end followed by a space: a value almost
    never does, and "Tom Hardy, Robert Pattinson" would otherwise be a candidate name. Two
    exceptions, because values do cross them: a comma before a number ("March 1, 2026") and
    the period of an abbreviation ("Dec. 16th", "Harry T. Burleigh", "St. Louis").
    """
    seen: dict[str, None] = {}
    for clause in _CLAUSE_END.split(text):
        tokens = list(re.finditer(r"\S+", clause))
        for i in range(len(tokens)):
            for j in range(i, min(i + max_words, len(tokens))):
                span = trimmed(clause[tokens[i].start():tokens[j].end()])
                if span and len(span) <= max_chars:
                    seen.setdefault(span, None)
                    bare = re.sub(r"['\u2019]s$", "", span)  # "Hardy's" also offers "Hardy"
                    if bare and bare != span:
                        seen.setdefault(bare, None)
    return list(seen)


# Words a period abbreviates, beside the ones with a period inside ("a.m", "U.S.A"): months,
# weekdays and name suffixes, written "fri." or "Jr." in a value.
_ABBREVIATIONS = frozenset((
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun",
    "jr", "sr", "dr", "mr", "mrs", "ms", "st", "am", "pm"))


def trimmed(raw: str) -> str:
    """`raw` without the punctuation at its edges, except the period of an abbreviation:
    "10:31 a.m." and "fri." keep the period of their word."""
    span = raw.strip(EDGE)
    return span + "." if span and raw.startswith(span + ".") and _abbreviation(span) else span


def _abbreviation(span: str) -> bool:
    """Whether the span's last word, before a period the text puts after it, abbreviates."""
    last = span.split()[-1]
    return "." in last or last.casefold() in _ABBREVIATIONS


_NUMBER_WORDS = {w: i for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six",
                                              "seven", "eight", "nine", "ten", "eleven", "twelve"))}


def text_numbers(text: str) -> list[float]:
    """Numbers written in `text`: digits (1,250 and 12.50 included) and the words zero..twelve."""
    found: dict[float, None] = {}
    for match in re.finditer(r"\d[\d,]*(?:\.\d+)?", text):
        raw = match.group().rstrip(",")
        if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", raw):
            raw = raw.replace(",", "")
        for part in raw.split(","):
            if part:
                found.setdefault(float(part), None)
    for word in re.findall(r"[A-Za-z]+", text):
        if word.lower() in _NUMBER_WORDS:
            found.setdefault(float(_NUMBER_WORDS[word.lower()]), None)
    return list(found)


def extractive_schema(js: dict[str, Any], spans: list[str],
                      numbers: list[float] = ()) -> dict[str, Any]:
    """A copy of `js` where free strings must be one of `spans` and numbers one of `numbers`
    (see the module docstring)."""
    out = copy.deepcopy(js)
    _restrict(out, spans, list(numbers))
    return out


def _restrict(node: Any, spans: list[str], numbers: list[float]) -> None:
    if not isinstance(node, dict):
        return
    free = node.get("x-extractive", True) and not {"enum", "const", "format", "pattern"} & node.keys()
    if free and node.get("type") == "string":
        lo, hi = node.get("minLength", 0), node.get("maxLength", 10**6)
        allowed = [s for s in spans if lo <= len(s) <= hi]
        if allowed:
            node["enum"] = allowed
            node.pop("maxLength", None)
            node.pop("minLength", None)
    elif free and node.get("type") in ("integer", "number"):
        lo = max(node.get("minimum", -math.inf), node.get("exclusiveMinimum", -math.inf))
        hi = min(node.get("maximum", math.inf), node.get("exclusiveMaximum", math.inf))
        allowed = [x for x in numbers if lo <= x <= hi and (node["type"] == "number" or x.is_integer())]
        if allowed:
            node["enum"] = [int(x) if x.is_integer() else x for x in allowed]
    for sub in subschemas(node):
        _restrict(sub, spans, numbers)


def words(text: str) -> list[str]:
    """The words of `text`, without punctuation ("Hardy's" is one word)."""
    return re.findall(r"[\w'\u2019]+", text)


def phrase(text: str) -> str:
    """`text` as compared: casefolded, whitespace collapsed."""
    return " ".join(text.casefold().split())

"""What labelled examples and the schema teach extraction beyond the prompt: the carrier
words of a kind of text, which are never values (`Carriers`), and the values each field is
known to hold, with their kind and length (`FieldLexicon`). Both are learnt per schema from
the user's own examples and descriptions, never from a word list of one domain."""

from __future__ import annotations

import functools
import re
from typing import Any

from simulacra.extract_spans import EDGE, phrase, text_spans, trimmed, words
from simulacra.schema import Schema
from simulacra.text import field_values

_NUMERIC = re.compile(r"(?<![a-z])(?:year|decade|date|time|hour|number|count|amount|age|price|"
                      r"cost|quantity|rating|score|zip|postcode|phone)s?(?![a-z])",
                      re.IGNORECASE)


# Fewer labelled examples than this say too little about where values sit in a text (whether
# one may open it, whether one may lie inside another).
MIN_EXAMPLES_TO_PLACE = 5


# Fields that hold a time: where a value widens to the whole time phrase around it.
_TEMPORAL = re.compile(r"(?<![a-z])(?:time|date|when|day|hour|period|deadline|duration)s?(?![a-z])",
                       re.IGNORECASE)
# Words a time phrase found in a text may start or end with that belong to the sentence, not
# the time: "on fri.", "at 10:31", "1 month from now in". "in 3 days" and "within an hour" keep
# theirs (they make a duration a point in time).
_TIME_EDGE = frozenset(("on", "at", "for", "by", "of", "to", "from", "with", "near", "the"))
_TIME_TAIL = _TIME_EDGE | {"in", "within", "and", "or"}


class Carriers:
    """What the labelled examples show is not a value. Queries of one kind share their
    carrier words ("weather", "play", "the", "What is"), and the small model otherwise files
    them as values ("weather" as a condition, "Play the" as a service, "forecast for" as a
    state). Two rules, both learnt from the examples, none from a word list:

    - a *phrase* found in at least two example texts and never a value of any field is
      never offered;
    - a span that begins or ends with a *word* found in at least two example texts and in no
      value is not offered when that word is written in lowercase or opens the text (so
      "Close To The Edge" stays a title where "Play the" and "weather be" go).
    """

    def __init__(self, examples: list[tuple[str, dict[str, Any]]]) -> None:
        values = [phrase(v) for _, record in examples for v in field_values(record)]
        value_words = {w for v in values for w in words(v)}
        texts_with_phrase: dict[str, int] = {}
        texts_with_word: dict[str, int] = {}
        for text, _ in examples:
            for span in {phrase(s) for s in text_spans(text)}:
                texts_with_phrase[span] = texts_with_phrase.get(span, 0) + 1
            for word in {w.casefold() for w in words(text)}:
                texts_with_word[word] = texts_with_word.get(word, 0) + 1
        self.phrases = frozenset(s for s, n in texts_with_phrase.items()
                                 if n >= 2 and s not in values)
        self.words = frozenset(w for w, n in texts_with_word.items()
                               if n >= 2 and w not in value_words)
        # Whether a value may open its text: unless the examples show one, the opening words
        # of a query ("What movies are playing", "Can I get the") are its carrier.
        self.opening = len(examples) < MIN_EXAMPLES_TO_PLACE or any(
            _opens(text, v) for text, record in examples for v in field_values(record)
            if isinstance(v, str))

    def offered(self, spans: list[str], text: str) -> list[str]:
        """`spans` without the carriers (all of them, if nothing else is left)."""
        opening = text.lstrip()
        kept = [s for s in spans if phrase(s) not in self.phrases
                and not self._carrier_edge(s, opening.startswith(s))
                and (self.opening or not _opens(opening, s))]
        return kept or spans

    def _carrier_edge(self, span: str, opens_text: bool) -> bool:
        said = words(span)
        if not said:
            return False
        first, last = said[0], said[-1]
        return ((first.casefold() in self.words and (first.islower() or opens_text))
                or (last.casefold() in self.words and last.islower()))


class FieldLexicon:
    """Values each top-level free-string field is known to hold: the ones its description
    lists ("a weather condition: rain, snow, fog"), its schema `examples`, and its values in
    the labelled examples, with their kind and length. The small model files a value under
    the first field that will take it ("saga" as the kind of work although the series
    field's description names it, a city as a country); this puts it right where the user's
    schema and examples say so (`settle`, `fill`), and nowhere else. Fields of other types
    (numbers, enums, lists) are left as decoded."""

    def __init__(self, schema: Schema, examples: list[tuple[str, dict[str, Any]]]) -> None:
        self.known: dict[str, set[str]] = {}
        self.nullable = {f.name for f in schema.fields if "null" in f.type}
        self.optional = {f.name for f in schema.fields if not f.required}
        free = [f for f in schema.fields if f.type in ("string", "string or null")]
        # fields whose name or description speaks of something counted or dated ("year",
        # "the date of birth"): where digits go when no labelled value shows their home
        self.numeric = [f.name for f in free if _NUMERIC.search(f"{f.name} {f.description}")]
        self.temporal = {f.name for f in free if _TEMPORAL.search(f"{f.name} {f.description}")}
        for f in free:
            terms = _listed_terms(f.description) | {
                phrase(str(v)) for v in f.examples if isinstance(v, str | int | float)}
            self.known[f.name] = terms
        # the values users gave: schema examples and labelled values, not description words
        self.shown: dict[str, set[str]] = {f.name: {phrase(str(v)) for v in f.examples
                                                    if isinstance(v, str)} for f in free}
        self.shapes: dict[str, list[str | None]] = {}
        self.longest: dict[str, int] = {}
        for _, record in examples:
            for name, value in record.items():
                if name in self.known:
                    strings = [v for v in field_values(value) if isinstance(v, str)]
                    self.known[name] |= {phrase(v) for v in strings}
                    self.shown[name] |= {phrase(v) for v in strings}
                    self.shapes.setdefault(name, []).extend(_shape(v) for v in strings)
                    self.longest[name] = max([self.longest.get(name, 0)]
                                             + [len(words(v)) for v in strings])
        # fields of common words ("song", "cinema", "hotter"): two or more labelled values,
        # every one in lowercase; a name ("One Way Ticket") is none of theirs
        self.common = {name for name, shapes in self.shapes.items() if len(shapes) >= 2
                       and all(_lowercase(v) for text, record in examples
                               for v in field_values(record.get(name)) if isinstance(v, str))}
        # Whether one value may lie inside another's ("Paris" in "12 rue X, Paris"): unless
        # the examples show it, two fields never share words of the text
        self.nesting = len(examples) < MIN_EXAMPLES_TO_PLACE or any(
            _inside(a, b) or _inside(b, a) for _, record in examples for a, b in _pairs(
                [record.get(name) for name in self.known]))

        # Whether a name may stop short of a capitalized word beside it ("Hillsview" before
        # "Heights"): unless the examples show one, a value is the whole name it is part of
        self.cut_names = len(examples) < MIN_EXAMPLES_TO_PLACE or any(
            _cut_name(v, text, field_values(record)) for text, record in examples
            for v in field_values(record))

    def knows(self, name: str, value: Any) -> bool:
        return isinstance(value, str) and phrase(value) in self.known.get(name, ())

    def trim(self, record: Any) -> Any:
        """`record` with each value's dangling words cut: the last ones ("The Pagans at" ->
        "The Pagans", "now at a" -> "now"), and, but for time fields ("in 3 days"), a
        leading preposition ("in 2004") or the field's own name ("year 1961" for a year,
        "city of Value" for a city). The small model runs a span on into the sentence, and a
        value rarely ends with an article, a preposition or "and", or starts with one. Not
        where the field's labelled or schema example values do so ("close from")."""
        if not isinstance(record, dict):
            return record
        out = dict(record)
        for name, value in record.items():
            if not isinstance(value, str) or name not in self.known or self.knows(name, value):
                continue
            shown = [t.split() for t in self.shown[name] if t.split()]
            said = value.split()
            if not any(t[-1] in _DANGLING for t in shown):
                while len(said) > 1 and said[-1] in _DANGLING:
                    said.pop()
            if name not in self.temporal:
                title = name.replace("_", " ").split()
                if (len(said) > len(title) and [w.casefold() for w in said[:len(title)]] == title
                        and not any(t[:len(title)] == title for t in shown)):
                    said = said[len(title):]
                    if len(said) > 1 and said[0] == "of":
                        said = said[1:]
                if (len(said) > 1 and said[0] in _LEADING
                        and not any(t[0] in _LEADING for t in shown)):
                    said = said[1:]
                if (len(said) > 1 and said[0] in _POSSESSIVE and _capitalized(said[1])
                        and not any(t[0] in _POSSESSIVE for t in shown)):
                    said = said[1:]   # "my Women of Rock": the name, not whose it is
            out[name] = " ".join(said) if len(said) < len(value.split()) else value
        return out

    def widen(self, record: Any, text: str) -> Any:
        """`record` with each value that is part of a longer value the user gave its field
        (a labelled value or a schema example), stated in the text around it, widened to that
        value ("schedules" to "movie schedules" where an example labels "movie schedules"):
        the small model stops at the head word. Not a description's words: "4 in '4 out of
        6'" illustrates a rating of 4. And a free string that is part of a hyphenated word
        becomes the whole word ("top" of "top-fifty"), even one its field knows."""
        if not isinstance(record, dict) or not text:
            return record
        out = dict(record)
        for name, value in record.items():
            compound = _whole_compound(value, text) if (
                name in self.known and isinstance(value, str)) else None
            if compound:
                out[name] = value = compound
            if not isinstance(value, str) or self.knows(name, value) or not value.strip():
                continue
            around = _time_around(value, text) if name in self.temporal else None
            if around and len(around) > len(value):
                out[name] = around
                continue
            inner = f" {phrase(value)} "
            for term in sorted(self.shown.get(name, ()), key=len, reverse=True):
                written = _stated(term, text) if inner in f" {term} " else None
                if written and phrase(value) in phrase(written.group()):
                    out[name] = written.group()
                    break
        return out

    def settle(self, record: Any, confidence: dict[str, float],
               text: str = "") -> tuple[Any, dict[str, float]]:
        """`record` (and its confidences) with each misfiled value moved to the one empty
        field that knows it (or knows it without its article, or another form of the word),
        or else the one time field when it is part of a time phrase the text states (moved
        as the whole phrase), or else that the text names beside it ("the album X"), or else
        whose labelled values are all of its kind. Values of function words ("my") go
        first, so the fields they held can take a value, and values that do not fit their
        field last."""
        if not isinstance(record, dict):
            return record, confidence
        out, confidence = dict(record), dict(confidence)
        movable = self.nullable | self.optional
        for name, value in record.items():   # "my" holds no field a name could move to
            if (name in movable and name in self.known and isinstance(value, str)
                    and _sentence_words(value) and not self.knows(name, value)):
                self.clear(out, name)
        for name, value in record.items():
            if (not isinstance(value, str) or name not in self.known or out.get(name) != value
                    or self.knows(name, value) or name not in movable):
                continue
            homes, moved = self._knowing(value, out), value
            bare = re.sub(r"(?i)^(?:the|an?)\s+", "", value)
            knowing_bare = self._knowing(bare, out) if not homes and bare != value else []
            if knowing_bare:   # "the current place": "current place" known
                homes, moved = knowing_bare, bare
            if not homes:   # "new" where the sort field's description lists "newest"
                homes = self._knowing_a_form(value, out)
            around = _time_around(value, text) if text and name not in self.temporal else None
            if not homes and around:   # "one hour" of "in one hour" filed as a country
                homes = [other for other in self.temporal if out.get(other) is None]
                moved = around
            if not homes and text and not _named_beside(name, value, text):
                homes = [other for other in self.known
                         if out.get(other) is None and _named_beside(other, value, text)]
            shape = _shape(value)
            if not homes and shape and shape not in self.shapes.get(name, [shape]):
                homes = [other for other, shapes in self.shapes.items()
                         if set(shapes) == {shape} and out.get(other) is None]
                if not homes and shape == "digits" and name not in self.numeric:
                    homes = [other for other in self.numeric
                             if not self.shapes.get(other) and out.get(other) is None]
            if len(homes) != 1:
                continue
            out[homes[0]] = moved
            self.clear(out, name)
            if name in confidence:
                confidence[homes[0]] = confidence.pop(name)
        for name, value in list(out.items()):
            if name in self.known and isinstance(value, str) and not self.fits(name, value):
                self.clear(out, name)
        return out, confidence

    def unnest(self, record: Any, confidence: dict[str, float]) -> Any:
        """`record` with no value inside another field's value, unless the labelled examples
        nest values: of "Knopfler" (service) and "Mark Knopfler" (artist), or "current"
        (select) and "the current" (title), the one its field knows stays, else the one the
        decoder was surer of."""
        if self.nesting or not isinstance(record, dict):
            return record
        out = dict(record)
        strings = [name for name in self.known if isinstance(out.get(name), str)]
        for a, b in _pairs(strings):
            if out.get(a) is None or out.get(b) is None or not (
                    _inside(out[a], out[b]) or _inside(out[b], out[a])):
                continue
            rank = {name: (self.knows(name, out[name]), confidence.get(name, 0.0))
                    for name in (a, b)}
            self.clear(out, a if rank[a] < rank[b] else b)
        return out

    def whole_names(self, record: Any, text: str) -> Any:
        """`record` without the values that are part of a longer name in the text: a
        capitalized value beside a capitalized word that no other value holds ("Navajo" of
        "Navajo National Monument" filed as a state, "Douglas" of "Douglas State Forest"),
        in a text that writes its other words in lowercase. The small model cuts a long name
        it does not know at a word that looks like a place or a person. Unless the examples
        show a value cut so; a field that knows the value keeps it."""
        if self.cut_names or not isinstance(record, dict) or not text:
            return record
        out = dict(record)
        values = [v for v in field_values(record) if isinstance(v, str)]
        for name, value in record.items():
            if (name in self.known and isinstance(value, str) and not self.knows(name, value)
                    and _cut_name(value, text, values)):
                self.clear(out, name)
        return out

    def _knowing_a_form(self, value: str, record: dict[str, Any]) -> list[str]:
        """The fields still empty in `record` that know another form of the one lowercase
        word `value`, an inflection apart ("new" and "newest", "hot" and "hotter", "song"
        and "songs"). A description lists one form of its words; a text writes another."""
        word = value.strip()
        if not re.fullmatch(r"[a-z]{3,}", word):
            return []
        return [name for name, terms in self.known.items() if record.get(name) is None
                and any(_inflected(word, t) or _inflected(t, word) for t in terms)]

    def _knowing(self, value: str, record: dict[str, Any]) -> list[str]:
        """The fields still empty in `record` that know `value`."""
        return [name for name, terms in self.known.items()
                if phrase(value) in terms and record.get(name) is None]

    def fits(self, name: str, value: str) -> bool:
        """Whether `value` can be a value of the field: not only lowercase function words
        ("me", "the", "like": the sentence's, not a value) unless the field knows them
        ("my" as an owner, "here"), and of the kind and length its labelled values have:
        no name written with capitals where they are all common words in lowercase ("Song"
        in a title-case text stays when the field knows "song"), no digits where two or
        more never hold one ("1972" is no playlist), at most twice the longest in words
        (three at least). The decoder's run-on spans ("the weather be in Deer River" as a
        spatial relation) are far longer than any value of such a field."""
        if self.knows(name, value):
            return True
        if _sentence_words(value):
            return False
        if name in self.common and _capitalized(value):
            return False
        shapes = self.shapes.get(name)
        if not shapes:
            return True
        if (_shape(value) == "digits" and len(shapes) >= 2
                and "digits" not in shapes):
            return False
        return len(words(value)) <= max(3, 2 * self.longest[name])

    def clear(self, record: dict[str, Any], name: str) -> None:
        """Empty field `name` of `record`: null where its type allows null, else no key (a
        field that is optional but not nullable)."""
        if name in self.nullable:
            record[name] = None
        else:
            record.pop(name, None)

    def fill(self, record: Any, text: str) -> Any:
        """`record` with each empty field that knows a phrase the text states (as whole
        words, apart from every value found) given it, when no other field knows it too; and
        the one empty time field given the one time phrase the text states apart from the
        values found ("this week", "in eighteen hours": the small model leaves most null)."""
        if not isinstance(record, dict):
            return record
        out = dict(record)
        taken = [phrase(v) for v in field_values(out) if isinstance(v, str)]

        def overlaps(found: str) -> bool:   # part of a value found, or holding one
            return any(found in v or v in found for v in taken)

        said = f" {phrase(' '.join(words(text)))} "
        for name, terms in self.known.items():
            if out.get(name) is not None or name not in self.nullable | self.optional:
                continue
            for term in sorted(terms, key=len, reverse=True):
                shared = any(term in other for o, other in self.known.items() if o != name)
                if shared or f" {term} " not in said or overlaps(term):
                    continue
                written = _stated(term, text)
                value = written.group() if written else term
                whole = _whole_compound(value, text)   # "top" of "top-fifty"
                if whole and overlaps(phrase(whole)):
                    continue
                out[name] = whole or value
                taken.append(phrase(whole or value))
                break
        empty = [name for name in self.temporal if out.get(name) is None
                 and name in self.nullable | self.optional]
        if len(empty) == 1:
            times = [t for t in time_phrases(text) if not overlaps(phrase(t))]
            if len(times) == 1:
                out[empty[0]] = times[0]
                taken.append(phrase(times[0]))
        empty = [name for name in self.numeric if out.get(name) is None
                 and set(self.shapes.get(name) or ["digits"]) == {"digits"}
                 and name in self.nullable | self.optional]
        if len(empty) == 1:
            numbers = [n for n in _loose_numbers(text) if not any(phrase(n) in v for v in taken)]
            if len(numbers) == 1:
                out[empty[0]] = numbers[0]
        return out


@functools.lru_cache(maxsize=256)
def time_phrases(text: str) -> tuple[str, ...]:
    """The time phrases `text` states, as written ("1 month from now", "in 213 days", "this
    week", "eleven A.M.", "nov. the 9th"), found by dateparser (English), in whole words of
    the text (dateparser stops at a period: "eleven A", "nov"), two found side by side (or
    with a number in words between) as one, without the sentence's prepositions at their
    edges. The small model stops a time at its head ("1 month", "213 days"), which says
    another thing."""
    from dateparser.search import search_dates

    try:
        found = search_dates(text, languages=["en"]) or []
    except Exception:  # noqa: BLE001 - a text dateparser cannot read states no time for it
        return ()
    runs: list[list[int]] = []   # [start, end] in the text, widened to whole words
    searched = 0
    for written, _ in found:
        start = text.find(written, searched)
        if start < 0:
            continue
        end = start + len(written)
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        while end < len(text) and not text[end].isspace():
            end += 1
        between = text[runs[-1][1]:start].strip(" ,") if runs else None
        if between == "" or (between and _SPELLED_NUMBER.fullmatch(between)):
            runs[-1][1] = end   # "January" "twenty-first," "2029": one date
        else:
            runs.append([start, end])
        searched = end
    out = []
    for start, end in runs:
        said = text[start:end].split()
        while said and said[0].strip(EDGE).casefold() in _TIME_EDGE:
            said = said[1:]
        while said and said[-1].strip(EDGE).casefold() in _TIME_TAIL:
            said = said[:-1]
        time = trimmed(" ".join(said))
        if time:
            out.append(time)
    return tuple(out)


def _loose_numbers(text: str) -> list[str]:
    """The numbers `text` states on their own, in digits or words ("1951", "fifties"): not
    one that is part of a name ("One Way Ticket", "Film 1"), of a longer time ("2 p.m."), an
    ordinal ("the first song", "wait a second") or one that counts the word after it ("two
    songs", "5 stars"; "fifties tune" and "1972 record" do not count), nor one joined to a
    word by a hyphen ("top-fifty", "top-5")."""
    times = [phrase(t) for t in time_phrases(text)]
    found = [m for m in re.finditer(r"(?<!\w)\d+(?:[.,:/]\d+)*(?!\w)", text)]
    found += [m for m in _SPELLED_NUMBER.finditer(text)
              if not re.match(r"\w", text[m.end():m.end() + 1])
              and not re.search(r"\w$", text[:m.start()])]
    out = []
    for m in found:
        number = re.sub(r"(?i)^the\s+", "", m.group())
        after = re.match(r"\s+(\w+)", text[m.end():])
        before = re.search(r"(\w+)\s+$", text[:m.start()])
        named = number[:1].isupper() or bool(
            before and before.group(1)[:1].isupper() and text[:before.start()].strip())
        cardinal = (re.fullmatch(r"\d{1,3}", number) is not None
                    or re.fullmatch(r"(?i)[a-z]+(?<!ies)(?<!th)(?<!st)(?<!nd)(?<!rd)", number))
        counts = cardinal and after is not None and after.group(1).casefold() not in _FUNCTION_WORDS
        in_time = any(f" {phrase(number)} " in f" {t} " and t != phrase(number) for t in times)
        ordinal = re.search(r"(?i)[a-z](?:first|second|third|th)$|^(?:first|second|third)$", number)
        compound = re.search(r"\w-$", text[:m.start()]) or re.match(r"-\w", text[m.end():])
        if not named and not counts and not in_time and not ordinal and not compound:
            out.append(number)
    return out


def _time_around(value: str, text: str) -> str | None:
    """The longest time phrase `text` states that holds `value` as whole words."""
    around = [t for t in time_phrases(text) if f" {phrase(value)} " in f" {phrase(t)} "]
    return max(around, key=len) if around else None


def _stated(term: str, text: str) -> re.Match[str] | None:
    """Where `text` states `term` as whole words (any case, any whitespace between)."""
    return re.search(rf"(?<!\w){_spaced(term)}(?!\w)", text, re.IGNORECASE)


def _inside(inner: Any, outer: Any) -> bool:
    """Whether the string `inner` is words of the string `outer` (and not all of it)."""
    if not isinstance(inner, str) or not isinstance(outer, str):
        return False
    said, within = " ".join(words(phrase(inner))), " ".join(words(phrase(outer)))
    return bool(said) and said != within and f" {said} " in f" {within} "


def _cut_name(value: Any, text: str, values: list[Any]) -> bool:
    """Whether the capitalized `value` is, everywhere `text` states it, beside a capitalized
    word (not the text's first, not a code like "MA") that no other of `values` holds, in a
    text that writes some word other than a function word in lowercase (in a title-case text
    every word is capitalized)."""
    if (not isinstance(value, str) or not value[:1].isupper() or _shape(value) == "code"
            or not any(w.islower() and w not in _FUNCTION_WORDS for w in words(text))):
        return False
    others = {w for v in values if isinstance(v, str) and v != value for w in words(v)}
    found = False
    for match in re.finditer(rf"(?<!\w){_spaced(value)}(?!\w)", text):
        found = True
        before = re.search(r"(?:^|\s)([\w'\u2019.-]+)\s+$", text[:match.start()])
        after = re.match(r"\s+([\w'\u2019.-]+)", text[match.end():])
        beside = [m.group(1) for m in (before, after) if m and not (
            m is before and text[:m.start(1)].strip() == "")]
        if not any(w[:1].isupper() and not re.fullmatch(r"[A-Z]{2,4}\.?", w)
                   and w not in others for w in beside):
            return False
    return found


def _whole_compound(value: str, text: str) -> str | None:
    """The hyphenated word `text` states `value` as a part of ("top-fifty" for "top",
    "Jean-Luc" for "Luc"), or None: a value does not cut a word at its hyphen. Not for a
    value with digits or a code ("2024" of "2024-05-01", "AA" of "AA-123"): those parts
    are values of their own."""
    if not re.search(r"[^\W\d_]", value) or re.search(r"\d", value) or _shape(value) == "code":
        return None
    found = re.search(rf"(?<![\w-])(?:[\w'\u2019]+-)*{_spaced(value)}(?:-[\w'\u2019]+)*(?![\w-])",
                      text, re.IGNORECASE)
    return found.group() if found and len(found.group()) > len(value) else None


def _inflected(stem: str, word: str) -> bool:
    """Whether `word` is `stem` with an English ending ("newest", "hotter", "songs")."""
    if not word.startswith(stem) or not re.fullmatch(r"[a-z]{3,}", stem):
        return False
    ending = word[len(stem):]
    if ending[:1] == stem[-1] and len(ending) > 2:   # a doubled consonant: "hot" -> "hotter"
        ending = ending[1:]
    return ending in _ENDINGS


def _sentence_words(value: str) -> bool:
    """Whether `value` is only lowercase function words ("my", "the", "like")."""
    said = words(value)
    return bool(said) and all(w.islower() and w in _FUNCTION_WORDS for w in said)


def _pairs(items: list[Any]) -> list[tuple[Any, Any]]:
    return [(a, b) for i, a in enumerate(items) for b in items[i + 1:]]


def _lowercase(value: str) -> bool:
    return value == value.lower()


def _capitalized(value: str) -> bool:
    """Whether every word of `value` that starts with a letter starts with a capital."""
    said = [w for w in words(value) if w[0].isalpha()]
    return bool(said) and all(w[0].isupper() for w in said)


def _opens(text: str, value: str) -> bool:
    """Whether `value` is the first words of `text`."""
    return re.match(rf"\W*{_spaced(value)}(?!\w)", text, re.IGNORECASE) is not None


def _named_beside(field: str, value: str, text: str) -> bool:
    """Whether `text` names the field right before or after the value: "the album X",
    "the city of X", "X playlist" for fields named album, city, playlist."""
    name, said = _spaced(field.replace("_", " ")), _spaced(value)
    return re.search(rf"(?<!\w){name}\s+(?:of\s+)?{said}(?!\w)|(?<!\w){said}\s+{name}(?!\w)",
                     text, re.IGNORECASE) is not None


def _spaced(run: str) -> str:
    """A regex for `run` as written in a text: its words literally, any whitespace
    between them."""
    return r"\s+".join(map(re.escape, run.split()))


# English words that build a sentence rather than name a thing: pronouns, determiners,
# prepositions, conjunctions, auxiliaries, question words.
_FUNCTION_WORDS = frozenset((
    "i", "me", "my", "mine", "we", "us", "our", "you", "your", "he", "him", "his", "she", "her",
    "it", "its", "they", "them", "their", "this", "that", "these", "those", "a", "an", "the",
    "some", "any", "each", "every", "all", "no", "of", "in", "on", "at", "to", "for", "from",
    "by", "with", "about", "into", "onto", "over", "under", "near", "like", "than", "as", "up",
    "down", "out", "off", "via", "per", "and", "or", "but", "nor", "so", "if", "then", "when",
    "where", "what", "which", "who", "whom", "whose", "why", "how", "is", "are", "was", "were",
    "be", "been", "being", "am", "do", "does", "did", "have", "has", "had", "will", "would",
    "can", "could", "shall", "should", "may", "might", "must", "not", "there", "here", "please",
    "just", "something", "anything", "everything", "nothing", "someone", "anyone"))


# Words a value seldom ends with: articles, prepositions, "and", "or" (lowercase).
_DANGLING = frozenset(("a", "an", "the", "at", "of", "to", "for", "in", "on", "with", "and",
                       "or", "from"))


# English word endings that make another form of one word.
_ENDINGS = frozenset(("s", "es", "r", "er", "st", "est", "d", "ed", "ing", "ly"))


# Words a value seldom starts with: prepositions (lowercase; "In The Disco" keeps its "In").
_LEADING = frozenset(("at", "of", "to", "for", "in", "on", "with", "from", "by"))


# Possessive words, which may stand before a name without being part of it.
_POSSESSIVE = frozenset(("my", "your", "our", "his", "her", "their", "its"))


# A number written in words: "three", "twenty-first", "the eighties", "two hundred".
_NUMBER_WORD = (r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                r"(?:thir|four|fif|six|seven|eigh|nine)teen(?:th)?|"
                r"(?:twen|thir|for|four|fif|six|seven|eigh|nine)t(?:y|ies|ieth)|"
                r"hundred|thousand|million|first|second|third|fourth|fifth|sixth|seventh|"
                r"eighth|ninth|tenth|eleventh|twelfth)")
_SPELLED_NUMBER = re.compile(rf"(?:the\s+)?{_NUMBER_WORD}(?:[\s-]+(?:and\s+)?{_NUMBER_WORD})*",
                             re.IGNORECASE)


def _shape(value: str) -> str | None:
    """A value's written kind where it tells fields apart: a code in capitals ("NV", "FL")
    or a number, in digits ("1972") or spelled out ("the thirties"); None for the rest."""
    if re.fullmatch(r"[A-Z]{2,4}", value.strip()):
        return "code"
    if re.search(r"\d", value) or _SPELLED_NUMBER.fullmatch(value.strip()):
        return "digits"
    return None


def _listed_terms(description: str) -> set[str]:
    """The values a field description lists: quoted ones, and the comma- or "or"-separated
    items after a colon, "such as", "e.g." or "for example", or of a description that is a
    list ("series, saga, chronicle"); up to three words each."""
    terms = set(re.findall(r"[\"\u201c]([^\"\u201d]{1,40})[\"\u201d]|(?<!\w)'([^']{1,40})'(?!\w)",
                           description))
    found = {phrase(t) for pair in terms for t in pair if t}
    listed = re.search(r"(?::|\bsuch as\b|\be\.g\.|\bfor example\b)\s*(.+)$", description)
    items = [phrase(item.strip(" .'\"\u201c\u201d")) for item in
             re.split(r",|;|\bor\b", listed.group(1) if listed else description)]
    short = [item for item in items if item and len(item.split()) <= 3]
    if listed or ("," in description and len(short) == len(items)):
        found |= set(short)
    return found

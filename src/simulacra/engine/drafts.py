"""Examples for a run that has none: draft a few records, keep the most plausible.

Without examples the small model has nothing to imitate: asked for product reviews it
writes serial numbers as products and echoes the prompt as titles, and most tries are
rejected by the plausibility gate. A few records that read like data, put in the prompt as
examples, fix most of that. So a run with fewer than WANTED examples first drafts DRAFTS
records (the gate already applies), scores them, and keeps the best as its own examples:
they shape the prompt and, like any example, are never copied into the output. Drafts cost
what records cost, so a short run drafts fewer (about a quarter of its size) and a run of
fewer than MIN_RUN records none: two records of a large schema are not worth twelve drafts.
Most drafts of a run without examples can be poor (one run of product reviews had three of
twelve pass the gate, and two of those were templates), so while fewer than WANTED drafts
pass the gate with no weak value (below) and a score of at least zero, the run drafts as
many again, at most DRAFT_ROUNDS times in all, each round told the drafts before it so that
it does not repeat them.

The score has two parts. A reading of each value's shape (checks/plausible.py's fields):
letters rather than digits, words of a usual length, no digit runs, no value much longer
than the others. And the model's reading of how well each value fits its field: its
log-probability per character after the run's subject line and the field's name
("product: "), less the same after a neutral cue. Likelihood alone was tried first and
preferred the blandest drafts ("full name: Michael", "product: the one we love"), which the
run then imitated (84% distinct names in 200 customer records); measured against the
neutral cue, "Stainless steel french press" and "Apple Watch SE" fit "product" best and
"Sarah Lindqvist" fits "full name" better than "Sarah". Digit runs, which the model finds
likelier after any field name than alone, are left to the shape score. A backend that
cannot score text (an endpoint) ranks by the shape alone.

Before either score, a draft is ranked by the share of its free-text values shorter than
MIN_CHARS: a value of one or two characters cannot vary over a run, and a run imitates its
examples' lengths (a run of 200 billing records whose drafted examples had the diagnosis
codes "8", "0" and "1" wrote single digits and made 139 distinct codes; one whose examples
had codes of 6 to 13 digits made 200). The model's reading would choose them otherwise: one
character's log-probability is one token's luck, from -15 to +4 nats across one run's drafts,
and digits after a code's name come out on top.

A value a template, a program or a web page would hold counts with the short ones: "{{ price
}}", "this.product.name", "https://www...", "amazon.com", or a field's name with a number
("Item Name 1", "Product A"). The gate lets them through (a record may name a site), but as
an example each is a pattern the run copies: a run of 200 product reviews whose drafts kept
"Item Name 1" wrote "Item Name 2" as 6% of its products, and one that kept "amazon.com"
wrote it as 3.5%.

Next come the drafts whose score is at least zero, then those the model reads so much
worse after their fields' names than after the neutral cue that the score falls below it.

Then a draft is ranked by the share of its free-text fields it leaves null. The grammar
lets an optional field be skipped, and the small model mostly skips it; a run imitates its
examples' nulls, and the null steer holds it to their share of them (engine/diversity.py).
So examples drafted from that habit would fix it for the run: product reviews whose drafted
examples had two reviewers in three left out wrote 77-80% of their reviews without one. A
draft that fills a field shows a value to imitate, and a run whose examples all fill it
still leaves it null where the model strongly prefers to: the steer charges a null by the
share of nulls the run already has, so it limits them without forbidding them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from simulacra.backends.base import Backend
from simulacra.checks.plausible import PLACEHOLDERS, PlausibilityGate, value_at
from simulacra.engine.diversity import Path
from simulacra.engine.loop import RunStats
from simulacra.plan import Plan

WANTED = 3       # examples a run should have
DRAFTS = 12      # records drafted to choose them from
DRAFT_ROUNDS = 3  # at most this many times DRAFTS, while fewer than WANTED drafts are clean
MIN_RUN = 15     # records a run needs before drafting pays
DRAFT_SEED = 0x5EED_D4AF
MODEL_WEIGHT = 1.0   # a nat per character of the model's reading, against the shape score
MIN_CHARS = 3        # a free-text value shorter than this cannot vary over a run
_DIGIT_RUN = re.compile(r"\d{5,}")
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
# a template's slot ("{{ price }}", "${name}", "<b>"), a program's name ("this.product.name",
# "com.apple.iphone"), a web address ("https://...", "www.", "amazon.com", "page_4.html"), a
# schema's type read back ("User's Name (string or null, optional)")
_MARKUP = re.compile(r"[{}<>]|\$\{|\bthis\.\w|^\w+(\.\w{2,}){2,}$|https?:|\bwww\.|"
                     r"\w\.(com|net|org|html?|php|io)\b|"
                     r"\((string|integer|number|boolean|null|optional)\b", re.IGNORECASE)
# fields where code or an address is data, not a sign of a template
_MARKUP_NAME = re.compile(r"url|uri|link|site|web|domain|mail|href|host|path|file|html|"
                          r"template|code|pattern|regex|query|command|script|handle", re.IGNORECASE)
# with the schema's field names, the words of a numbered placeholder ("Item Name 1", "my product")
_FILLER = PLACEHOLDERS | {"item", "name", "new", "my", "your", "the", "a", "an", "dummy"}
_INDEX = re.compile(r"\b(\d+|[^\W\d_])\b", re.UNICODE)   # "1", "A": a placeholder's number


def drafts_for(n: int) -> int:
    """How many records to draft for a run of `n`."""
    return 0 if n < MIN_RUN else min(DRAFTS, max(WANTED + 1, n // 4))


def with_drafted_examples(backend: Backend, plan: Plan, n: int, *, seed: int,
                          temperature: float, diversity: float) -> tuple[Plan, int]:
    """`plan` with drafted examples added when it has fewer than WANTED (else unchanged),
    and how many records were drafted. Only on a constrained decoder, where a draft is cheap."""
    if len(plan.examples) >= WANTED or not plan.schema.is_object or plan.text_examples \
            or not backend.capabilities.grammar or not drafts_for(n):
        return plan, 0
    from simulacra.engine.run import run_records

    gate = PlausibilityGate(plan.schema.decoding_schema(), plan.examples)
    reader = getattr(backend, "logprob_per_char", None)
    intro = plan.header().splitlines()[0] + READING   # the subject line only: kept short

    def score(record: dict[str, Any]) -> float:
        shape = plausibility(gate, record)
        if shape < 0 or reader is None:
            return shape
        return shape + MODEL_WEIGHT * field_fit(reader, intro, gate, record)

    def rank(pair: tuple[float, dict[str, Any]]) -> tuple[float, bool, float, float]:
        value, record = pair
        return weak_share(gate, record), value < 0, null_share(gate, record), -value

    wanted = WANTED - len(plan.examples)
    drafted: list[dict[str, Any]] = []
    scored: list[tuple[float, dict[str, Any]]] = []
    for _ in range(DRAFT_ROUNDS):   # another round while too few drafts are clean
        # no spares: drafts are a pool to choose from, so a rejected one need not be made
        # again at once, and the drafts stay those the seed always made
        new = [o.data for o in run_records(
            backend, plan, drafts_for(n), seed=seed ^ DRAFT_SEED, start=len(drafted),
            prior=list(drafted), temperature=temperature, max_attempts=2, stats=RunStats(),
            diversity=diversity, spares=False)]
        drafted += new
        # a draft the gate flags (a record's last try may keep an implausible value) is never
        # kept: as an example it would make that value exempt for the whole run
        scored += [(score(record), record) for record in new if gate.reason(record) is None]
        clean = [record for value, record in scored
                 if value >= 0 and not weak_share(gate, record)]
        if len(clean) >= wanted:
            break
    ranked = [record for _, record in sorted(scored, key=rank)]
    chosen = choose(gate, ranked, plan.examples, wanted)
    return replace(plan, examples=plan.examples + chosen), len(drafted)


READING = "\n\nOne of these records, described in words:\n"
NEUTRAL = "Some text:\n"


def field_fit(reader: Callable[[str, str], float], intro: str, gate: PlausibilityGate,
              record: dict[str, Any]) -> float:
    """How much likelier each free-text value is after its field's name ("product: ") than
    after a neutral cue, per character, averaged over the fields (pointwise mutual
    information). Likelihood alone prefers the blandest text anywhere ("the one we love",
    "Michael"); this asks whether the value is what the field calls for."""
    fits = []
    for path in gate.fields:
        value = value_at(record, path)
        if isinstance(value, str) and value.strip():
            label = ".".join(path).replace("_", " ")
            fits.append(reader(f"{intro}{label}: ", value) - reader(NEUTRAL, value))
    return sum(fits) / len(fits) if fits else 0.0


def weak_share(gate: PlausibilityGate, record: dict[str, Any]) -> float:
    """The share of the record's free-text values a run should not imitate: shorter than
    MIN_CHARS, or `templated` (of the values it has: a null is neither, so a draft gains
    nothing by leaving one out)."""
    values = [(path, value) for path in gate.fields
              if isinstance(value := value_at(record, path), str)]
    weak = [len(text.strip()) < MIN_CHARS or templated(gate, path, text) for path, text in values]
    return sum(weak) / len(weak) if weak else 0.0


def templated(gate: PlausibilityGate, path: Path, text: str) -> bool:
    """Whether a value reads as a template's, a program's or a web page's text rather than
    data (in a field whose name does not call for code or an address), or as a field's name
    with a number: "{{ price }}", "this.product.name", "amazon.com", "Item Name 1"."""
    if _MARKUP.search(text) and not _MARKUP_NAME.search(".".join(path)):
        return True
    return gate.only_field_words(_INDEX.sub(" ", text), also=_FILLER)


def null_share(gate: PlausibilityGate, record: dict[str, Any]) -> float:
    """The share of the gate's free-text fields that the record leaves null or out (fields
    inside lists are not counted: `value_at` does not reach into them)."""
    paths = [path for path in gate.fields if "[]" not in path]
    return sum(value_at(record, path) is None for path in paths) / len(paths) if paths else 0.0


def choose(gate: PlausibilityGate, ranked: list[dict[str, Any]], given: list[Any],
           wanted: int) -> list[dict[str, Any]]:
    """The first `wanted` of `ranked`, except that the last place goes to the best draft that
    gives a value to a free-text field no other example has, if one does and is no weaker
    (`weak_share`) than the next in rank. Examples that all leave a field null show no value
    to imitate, and the null steer lets a run have its examples' share of nulls, which would
    then be all of them."""
    if wanted < 1:   # (the slices below would take all but the last)
        return []
    chosen, rest = ranked[:wanted - 1], ranked[wanted - 1:]
    if not rest:
        return chosen
    shown = [*given, *chosen]
    unshown = [path for path in gate.fields
               if all(value_at(example, path) is None for example in shown)]
    weakest = weak_share(gate, rest[0])   # a covering draft may not be weaker than the next
    covering = [record for record in rest if weak_share(gate, record) <= weakest
                and any(value_at(record, path) is not None for path in unshown)]
    return [*chosen, (covering or rest)[0]]


def free_texts(gate: PlausibilityGate, record: dict[str, Any]) -> list[str]:
    """The record's values in the gate's free-text fields that are strings (not null)."""
    return [v for v in (value_at(record, path) for path in gate.fields) if isinstance(v, str)]


def plausibility(gate: PlausibilityGate, record: dict[str, Any]) -> float:
    """Higher for records whose free-text values read like text (see the module doc)."""
    if gate.reason(record):
        return -1.0
    texts = free_texts(gate, record)
    if not texts:
        return 0.0
    score = 0.0
    for text in texts:
        letters = sum(c.isalpha() for c in text) / max(1, len(text))
        words = _WORD.findall(text)
        score += letters + min(1.0, len(words) / 2) - 0.5 * len(_DIGIT_RUN.findall(text))
    longest = max(len(t) for t in texts)
    return score / len(texts) - (0.5 if longest > 120 else 0.0)


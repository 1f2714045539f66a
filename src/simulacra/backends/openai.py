"""Any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp server, Ollama) through the openai SDK.

Structured output uses the best rung the endpoint accepts: a `json_schema` response format,
then `json_object` with the schema (llama.cpp server's form), plain `json_object`, a forced
tool call whose parameters are the schema, then a plain prompt. The engine validates every
reply either way, and the rung that served each request is reported as its route (in the
summary and the ledger). Until a rung has answered, structured requests go one at a time (a
refusal then costs one request, not one per concurrent slot), and the rung that answered is
remembered in the cache directory per endpoint and model, so the next run starts there.
Values a request asks to avoid (examples' values, values the run repeats) have the tokens
that start them pushed down through `logit_bias` where the server says how it tokenizes. The
API key is read from an environment variable and never appears in reprs, errors or anything
stored.

This module only makes one request at a time; its `call_policy` asks the engine
(engine/calls.py) for concurrency, retries, the adaptive limit and the response cache.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from simulacra.backends.base import CallPolicy, Capabilities, Completion, Request
from simulacra.errors import BackendError, MissingKeyError, UsageError
from simulacra.schema.model import property_names

SYSTEM = ("You write synthetic data records. Reply with exactly one JSON object that matches "
          "the schema, and nothing else.")
# The ladder of structured-output modes, best first. "json_object+schema" is llama.cpp
# server's form (response_format {"type": "json_object", "schema": ...}).
RUNGS = ("json_schema", "json_object+schema", "json_object", "tools", "prompt")
# Logits taken from the tokens that start each value a request asks to avoid (its
# extra["avoid"]: the examples' values and those the run keeps repeating), on servers that
# say how they tokenize. Measured through llama_cpp.server, MedicalBilling, 12 requests:
# 7 useful records without it (5 copied an example's patient), 12 with 5 on the first
# token. Over 20 records at seeds 1, 3 and 4, 5 on the first token still lost 7 of 63
# requests (2 exact copies of an example, 4 near-copies, 1 implausible); 10 on the first
# token lost 2 of 60 (near-copies written " Johnson Smith" and "Mrs. Johnson Smith"); 10 on
# every token of a name-like value (words of one token each) and on its spaced first token,
# 1 of 101 (seeds 1, 3-6).
AVOID_BIAS = 10.0
# Where local servers tokenize text: llama.cpp's server, then llama-cpp-python's.
TOKENIZE = (("/tokenize", "content"), ("/extras/tokenize", "input"))


class OpenAIBackend:
    """A chat-completions endpoint; the engine sends `concurrency` requests at once."""

    name = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 64, timeout: float = 120.0, check: bool = True,
                 max_retries: int = 5, adaptive: bool = True, cache: bool = True) -> None:
        import openai

        key = os.environ.get(api_key_env)
        if not key:
            if base_url is None:
                raise MissingKeyError(
                    f"no API key: set {api_key_env} (or name another variable with --api-key-env)"
                )
            key = "not-needed"  # local servers (llama.cpp, vLLM) accept any key
        self.model_id = model
        self.base_url = base_url or "the OpenAI API"
        self.capabilities = Capabilities(json_schema=True, batch=concurrency, chat=True)
        self.call_policy = CallPolicy(concurrency=concurrency, max_retries=max_retries,
                                      adaptive=adaptive, cache=cache)
        self._client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=0,
                                     timeout=timeout)
        self._rung = 0
        self._rung_confirmed = False  # once a rung has answered, errors are real, not format refusals
        self._server_errors: dict[str, int] = {}  # 500s seen per rung before one answered
        self._ladder_lock = threading.Lock()
        self._probe_lock = threading.Lock()   # one structured request at a time until confirmed
        self._rung_recalled = False
        self.requests = 0   # sent to the endpoint (cache hits never reach the backend)
        self._endpoint = base_url or "openai"
        self._tokenize: tuple[str, str] | None = None   # (url, field) once found
        self._tokenize_probed = base_url is None   # OpenAI's own API does not say
        self._tokenize_lock = threading.Lock()   # one probe, not one per request thread
        self._lead: list[int] = []     # tokens the server puts before any text (BOS)
        self._tokens_of: dict[str, list[int] | None] = {}   # the server's, per text
        self._value_tokens: dict[str, tuple[int, ...]] = {}   # see _avoid_tokens
        self._schema_keys: dict[str, set[int]] = {}   # see _key_tokens
        self._bias_refused = False
        self._remember = cache   # with the cache on, the rung that answered is kept there too
        if check:
            self._check_reachable()

    def __repr__(self) -> str:  # never the key
        return f"OpenAIBackend(model={self.model_id!r}, base_url={self.base_url!r})"

    def _check_reachable(self) -> None:
        import openai

        try:
            self._client.models.list()
        except openai.APIConnectionError:
            raise UsageError(
                f"endpoint {self.base_url} is unreachable: check --base-url and that the server "
                "is running"
            ) from None
        except openai.AuthenticationError:
            raise MissingKeyError(f"endpoint {self.base_url} refused the API key (401)") from None
        except openai.APIStatusError:
            pass  # some servers do not list models; reachable is what matters here

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        """Each request in turn; a failure raises BackendError (retryable when it may pass)."""
        return [self._probing(request) for request in requests]

    def _probing(self, request: Request) -> Completion:
        """`_call`, one structured request at a time until a rung has answered: while the
        ladder is being probed, concurrent requests would each meet the same refusal."""
        if request.json_schema is None or self._rung_confirmed:
            return self._call(request)
        with self._probe_lock:
            self._recall_rung()
            if not self._rung_confirmed:
                return self._call(request)
        return self._call(request)

    def _recall_rung(self) -> None:
        """Start where this endpoint and model answered last time (cache directory), or
        else where the server's own API description says its response formats begin: a
        refused probe is a wasted request."""
        if self._rung_recalled:
            return
        self._rung_recalled = True
        rung = None
        if self._remember:
            with _rungs() as store:
                rung = store.rung(self._endpoint, self.model_id)
        if rung is None and self._endpoint != "openai":
            rung = self._described_rung()
        if rung in RUNGS:
            self._rung = max(self._rung, RUNGS.index(rung))

    def _described_rung(self) -> str | None:
        """The best rung the server's OpenAPI document (`/openapi.json`, served by FastAPI
        servers: llama-cpp-python's, vLLM's) allows for `response_format`; None when it does
        not say. No key is sent: the document is public where it exists."""
        import httpx

        try:
            reply = httpx.get(self._server_root() + "/openapi.json", timeout=10)
            doc = reply.json() if reply.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return rung_from_openapi(doc) if isinstance(doc, dict) else None

    def _server_root(self) -> str:
        """The server's address without the API's "/v1": where local servers keep their
        other routes (tokenizing, the API description)."""
        return self.base_url.rstrip("/").removesuffix("/v1")

    def _call(self, request: Request) -> Completion:
        messages = [{"role": "system", "content": request.instructions or SYSTEM}]
        user = request.prompt
        if request.json_schema is not None:
            user += "\nWrite the next record as one JSON object."
        if request.feedback:
            user += f"\nThe previous reply was rejected: {request.feedback}. Fix it."
        messages.append({"role": "user", "content": user})
        while True:
            rung = RUNGS[self._rung] if request.json_schema is not None else "prompt"
            kwargs: dict[str, Any] = {
                "model": self.model_id, "messages": messages, "temperature": request.temperature,
                "max_tokens": request.max_tokens,
            }
            if request.seed is not None:
                kwargs["seed"] = request.seed
            bias = self._logit_bias(request.extra.get("avoid", ()), request.json_schema)
            if bias:
                kwargs["logit_bias"] = bias
            if rung == "json_schema":
                kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "record", "schema": request.json_schema, "strict": True}}
            elif rung == "json_object+schema":
                kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
            elif rung == "json_object":
                kwargs["response_format"] = {"type": "json_object"}
            elif rung == "tools":  # the schema as a function's parameters, the call forced
                kwargs["tools"] = [{"type": "function", "function": {
                    "name": "record", "description": "Return one record.",
                    "parameters": request.json_schema}}]
                kwargs["tool_choice"] = {"type": "function", "function": {"name": "record"}}
            started = time.perf_counter()
            with self._ladder_lock:   # requests come from the engine's threads
                self.requests += 1
            try:
                with _normalized(self.base_url):
                    reply = self._client.chat.completions.create(**kwargs)
            except BackendError as exc:
                if bias and exc.status in (400, 422) and not self._bias_refused:
                    self._bias_refused = True   # a server that tokenizes but takes no bias
                    continue
                if rung != "prompt" and not self._rung_confirmed and self._refuses(rung, exc):
                    continue
                raise
            if request.json_schema is not None and not self._rung_confirmed:
                self._rung_confirmed = True
                if self._remember:
                    with _rungs() as store:
                        store.remember_rung(self._endpoint, self.model_id, rung)
            choice = reply.choices[0]
            usage = reply.usage
            calls = getattr(choice.message, "tool_calls", None) or []
            text = calls[0].function.arguments if rung == "tools" and calls else \
                choice.message.content or ""
            return Completion(
                text=text,
                tokens_in=getattr(usage, "prompt_tokens", 0) or 0,
                tokens_out=getattr(usage, "completion_tokens", 0) or 0,
                finish_reason="length" if choice.finish_reason == "length" else "stop",
                route=rung, seconds=time.perf_counter() - started,
            )

    def _logit_bias(self, avoid: Sequence[str], schema: dict[str, Any] | None = None
                    ) -> dict[str, float]:
        """{token id: -AVOID_BIAS} for the tokens that start each value in `avoid` (see
        `_avoid_tokens`), except those the schema's keys are written with (a reply must
        still be able to write them); {} when the server does not say how it tokenizes."""
        bias: dict[str, float] = {}
        if self._bias_refused or not avoid:
            return bias
        keep = self._key_tokens(schema) if schema is not None else set()
        for value in avoid:
            if value not in self._value_tokens:
                self._value_tokens[value] = self._avoid_tokens(value)
            for token in self._value_tokens[value]:
                if token not in keep:
                    bias[str(token)] = -AVOID_BIAS
        return bias

    def _key_tokens(self, schema: dict[str, Any]) -> set[int]:
        """The tokens of the schema's property names as a JSON object writes them."""
        names = sorted(property_names(schema))
        text = json.dumps(dict.fromkeys(names, 0)) + json.dumps(dict.fromkeys(names, 0),
                                                                 separators=(",", ":"))
        if text not in self._schema_keys:
            self._schema_keys[text] = set(self._server_tokens(text) or ())
        return self._schema_keys[text]

    def _avoid_tokens(self, value: str) -> tuple[int, ...]:
        """The tokens that would start `value` again: its first token, also as it is after a
        space (a model dodges a pushed-down "Johnson" by writing " Johnson"), and every token
        of a short name-like value (up to three words of letters, each one token, so "Mrs.
        Johnson Smith" is pushed down too; a word cut into pieces keeps its pieces, which
        other words share). A value whose first token is a single character (a digit, an
        initial) is left alone: pushing that token down would change every number or word
        that starts with it."""
        value = value.strip()
        if not value[:1].isalpha():
            return ()
        tokens, first_char = self._server_tokens(value), self._server_tokens(value[0])
        if not tokens or first_char is None or first_char[:1] == tokens[:1]:
            return ()
        words = value.split()
        name_like = len(tokens) == len(words) <= 3 and all(len(w) > 1 and w.isalpha()
                                                            for w in words)
        found = list(tokens if name_like else tokens[:1])
        spaced, space = self._server_tokens(" " + value), self._server_tokens(" ")
        if spaced and spaced[:1] != (space or [])[:1]:
            found.append(spaced[0])
        return tuple(dict.fromkeys(found))

    def _server_tokens(self, text: str) -> list[int] | None:
        """The server's tokens for `text` (without the BOS it may add), or None."""
        import httpx

        with self._tokenize_lock:
            if not self._tokenize_probed:
                self._tokenize_probed = True
                for path, field in TOKENIZE:
                    self._tokenize = (self._server_root() + path, field)
                    lead = self._server_tokens_at(httpx, "")
                    if lead is not None:
                        self._lead = lead
                        break
                    self._tokenize = None
        if self._tokenize is None:
            return None
        if text not in self._tokens_of:   # " " and first letters recur for every value
            tokens = self._server_tokens_at(httpx, text)
            if tokens is not None and tokens[:len(self._lead)] == self._lead:
                tokens = tokens[len(self._lead):]
            self._tokens_of[text] = tokens
        return self._tokens_of[text]

    def _server_tokens_at(self, httpx: Any, text: str) -> list[int] | None:
        url, field = self._tokenize   # type: ignore[misc]
        try:
            reply = httpx.post(url, json={field: text}, timeout=10,
                               headers={"Authorization": f"Bearer {self._client.api_key}"})
            tokens = reply.json().get("tokens") if reply.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return tokens if isinstance(tokens, list) and all(isinstance(t, int) for t in tokens) \
            else None

    def _refuses(self, rung: str, exc: BackendError) -> bool:
        """Whether `exc` means the endpoint does not take this rung's format, and if so step
        down. Servers refuse an unknown format with a 400 or 422, llama.cpp's server with a
        500; a lost connection, a timeout, a 429 or 503 or a broken body says nothing about
        the format, so it is retried on the same rung. A 500 counts as a refusal only the
        second time in a row on one rung (one transient 500 must not cost the schema),
        unless its message names the response format."""
        with self._ladder_lock:
            if RUNGS.index(rung) < self._rung:  # another request already stepped past it
                return True
            if exc.status is None or exc.status in (401, 403, 408, 429) or exc.status > 500:
                return False
            if exc.status == 500 and not getattr(exc, "names_format", False):
                self._server_errors[rung] = self._server_errors.get(rung, 0) + 1
                if self._server_errors[rung] < 2:
                    return False
            if self._rung >= len(RUNGS) - 1:
                return False
            self._rung = RUNGS.index(rung) + 1
            return True

    def close(self) -> None:
        self._client.close()


def rung_from_openapi(doc: dict[str, Any]) -> str | None:
    """The first rung of RUNGS whose form an OpenAPI document's chat request allows: the
    `type` values its `response_format` takes ("json_schema" or not), and whether the
    json_object form has a `schema` property (llama.cpp's). None when the document does not
    describe `response_format`."""
    schemas = doc.get("components", {}).get("schemas", {})

    def resolve(node: Any, seen: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """The object schemas `node` can be, through $ref, anyOf, oneOf and allOf."""
        if not isinstance(node, dict):
            return []
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            return [] if name in seen else resolve(schemas.get(name), seen | {name})
        found = [node] if "properties" in node else []
        for key in ("anyOf", "oneOf", "allOf"):
            for part in node.get(key, ()):
                found += resolve(part, seen)
        return found

    formats: dict[str, set[str]] = {}   # type value -> the properties beside it
    for schema in schemas.values():
        for body in resolve(schema):
            for option in resolve(body.get("properties", {}).get("response_format")):
                props = option.get("properties", {})
                for value in _type_values(props.get("type")):
                    formats.setdefault(value, set()).update(props)
    if not formats:
        return None
    if "json_schema" in formats:
        return "json_schema"
    if "json_object" in formats:
        return "json_object+schema" if "schema" in formats["json_object"] else "json_object"
    return "tools"


def _type_values(node: Any) -> list[str]:
    """The strings a `type` property allows: its enum or const, through anyOf/oneOf."""
    if not isinstance(node, dict):
        return []
    values = [v for v in node.get("enum", ()) if isinstance(v, str)]
    if isinstance(node.get("const"), str):
        values.append(node["const"])
    for key in ("anyOf", "oneOf"):
        for part in node.get(key, ()):
            values += _type_values(part)
    return values


def _rungs() -> Any:
    """The store that remembers each endpoint's rung (the response cache's database)."""
    from contextlib import closing

    from simulacra.cache import ResponseCache

    return closing(ResponseCache())


def _retry_after(exc: Exception) -> float | None:
    """Seconds from a Retry-After header (capped at 60), if the server sent one."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


@contextmanager
def _normalized(where: str) -> Iterator[None]:
    """SDK errors as BackendError with a retryable flag and no request details (no key)."""
    import openai

    try:
        yield
    except openai.APITimeoutError:
        raise BackendError(f"{where} timed out", backend="openai", retryable=True) from None
    except openai.APIConnectionError:
        raise BackendError(f"lost the connection to {where}", backend="openai",
                           retryable=True) from None
    except openai.RateLimitError as exc:
        raise BackendError(f"{where} is rate limiting (429)", backend="openai", retryable=True,
                           retry_after=_retry_after(exc)) from None
    except openai.AuthenticationError:
        raise MissingKeyError(f"{where} refused the API key (401)") from None
    except (ValueError, openai.APIResponseValidationError):  # a truncated or non-JSON body
        raise BackendError(f"{where} sent a reply that is not valid JSON", backend="openai",
                           retryable=True) from None
    except openai.APIStatusError as exc:
        code = exc.status_code
        error = BackendError(
            f"{where} rejected the request ({code})" if code < 500 else f"{where} failed ({code})",
            backend="openai", retryable=code >= 500, status=code,
        )
        # llama-cpp-python's server answers a response format it does not know with a 500
        # whose message names it: a refusal, not a fault (the message itself is not kept)
        error.names_format = "response_format" in str(exc.message)
        raise error from None

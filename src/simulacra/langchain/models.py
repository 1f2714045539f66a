"""LangChain models that run on simulacra backends (the embedded model by default).

`ChatSimulacra` replaces `ChatOpenAI` and `SimulacraLLM` replaces the `OpenAI` completion model
in LangChain code. The embedded Gemma 3 270M is a base model without a chat template, so chat
messages become a plain transcript it can continue:

    <system messages, as a header>

    User: <human message>
    Assistant: <ai message>
    User: <last human message>
    Assistant:

and generation stops at the next "User:" line. `with_structured_output(Schema)` and prompts that
carry a JSON schema (PydanticOutputParser's format instructions) are decoded under that schema's
grammar, so the reply always parses.
"""

from __future__ import annotations

import json
import re
import sys
from functools import lru_cache
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, BaseLLM
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult, Generation, LLMResult
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from simulacra.backends.base import Backend, Completion, Request
from simulacra.backends.registry import get_backend, is_model_name, model_name
from simulacra.engine import calls
from simulacra.engine.loop import Try, Verdict, derive_seed, failure_reason, run
from simulacra.engine.run import USUAL_TEXT
from simulacra.errors import BackendError, GenerationError
from simulacra.schema import RecordInvalid, Schema, load_schema

_SCHEMA_BLOCK = re.compile(r"Here is the output schema:\s*```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


@lru_cache(maxsize=4)
def shared_backend(model: str | None) -> Backend:
    """One loaded model per name, shared by every LangChain wrapper that asks for it."""
    return get_backend(model)


_SAID: set[str] = set()


def resolve_model(model: str | None) -> str | None:
    """A simulacra model name; any other name (the tutorial's "gpt-3.5-turbo") means the
    default model, said once per name on stderr so nobody mistakes whose model answered."""
    if model is None or is_model_name(model):
        return model
    if model not in _SAID:
        _SAID.add(model)
        print(f"simulacra: {model!r} is not a simulacra model; using {model_name(None)}",
              file=sys.stderr)
    return None


def messages_to_prompt(messages: list[BaseMessage]) -> str:
    header, turns = [], []
    for message in messages:
        text = message.content if isinstance(message.content, str) else str(message.content)
        if message.type == "system":
            header.append(text)
        elif message.type == "ai":
            turns.append(f"Assistant: {text}")
        else:
            turns.append(f"User: {text}")
    head = "\n".join(header) + "\n\n" if header else ""
    return head + "\n".join(turns) + "\nAssistant:"


class _SimulacraBase(BaseModel):
    """What both wrappers share: the model name, sampling settings, structured decoding."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)
    model: str | None = Field(default=None, alias="model_name")
    temperature: float = 0.7
    max_tokens: int = 256
    seed: int = 0
    _calls: int = PrivateAttr(default=0)

    def simulacra_backend(self) -> Backend:
        return shared_backend(resolve_model(self.model))

    def _next_seed(self) -> int:
        self._calls += 1
        return derive_seed(self.seed, self._calls, 0)

    def _complete(self, prompt: str, stop: list[str] | None, json_schema: dict | None = None) -> str:
        request = Request(prompt=prompt, json_schema=json_schema, temperature=self.temperature,
                          max_tokens=self.max_tokens, seed=self._next_seed(),
                          stop=tuple(stop or ()) if json_schema is None else ())
        [completion] = calls.wrap(self.simulacra_backend()).complete([request])
        if completion.finish_reason == "error":
            raise BackendError(completion.text, backend=self.simulacra_backend().name)
        return completion.text.strip()

    def _structured(self, schema: Any, prompt: str) -> Any:
        """A reply decoded under `schema`, through the engine's loop (validated, retried with
        the error fed back, up to STRUCTURED_ATTEMPTS times)."""
        self._calls += 1
        task = _StructuredTask(load_schema(schema), prompt, self.temperature, self.max_tokens)
        [outcome] = run(self.simulacra_backend(), task, [self._calls], seed=self.seed,
                        max_attempts=STRUCTURED_ATTEMPTS)
        if not outcome.ok:
            raise GenerationError(f"no valid {task.schema.name} after {outcome.attempts} "
                                  f"attempts: {outcome.reason}", attempts=outcome.attempts,
                                  last_output=outcome.last_output, errors=[outcome.reason])
        return outcome.value


STRUCTURED_ATTEMPTS = 3


class _StructuredTask:
    """`with_structured_output` as an engine task: one prompt, the schema's grammar."""

    def __init__(self, schema: Schema, prompt: str, temperature: float, max_tokens: int) -> None:
        self.schema, self.prompt = schema, prompt
        self.temperature, self.max_tokens = temperature, max_tokens
        self.decoding = schema.decoding_schema()

    def requests(self, tries: list[Try]) -> list[Request]:
        return [Request(prompt=self.prompt, json_schema=self.decoding, seed=t.seed,
                        temperature=self.temperature, max_tokens=self.max_tokens,
                        feedback=t.feedback, end_text_after={"": USUAL_TEXT}) for t in tries]

    def judge(self, attempt: Try, request: Request, completion: Completion) -> Verdict:
        reason = failure_reason(completion)
        if reason:
            return Verdict(reason=reason)
        try:
            return Verdict(value=self.schema.validate(completion.text.strip()))
        except RecordInvalid as exc:
            return Verdict(reason="invalid: " + "; ".join(exc.errors[:3]))


class ChatSimulacra(_SimulacraBase, BaseChatModel):
    """A LangChain chat model on simulacra: `ChatSimulacra()` or `ChatSimulacra(temperature=1)`."""


    @property
    def _llm_type(self) -> str:
        return "simulacra-chat"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text = self._complete(messages_to_prompt(messages), ["\nUser:", *(stop or [])])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def with_structured_output(self, schema: Any, **kwargs: Any) -> RunnableLambda:
        """Replies decoded under `schema`'s grammar: always an instance of it (or a dict)."""

        def run(value: Any) -> Any:
            if hasattr(value, "to_messages"):
                value = value.to_messages()
            if isinstance(value, list):
                from langchain_core.messages import convert_to_messages

                prompt = messages_to_prompt(convert_to_messages(value))
            else:
                prompt = f"User: {value}\nAssistant:"
            return self._structured(schema, prompt + " ")

        return RunnableLambda(run)


class SimulacraLLM(_SimulacraBase, BaseLLM):
    """A LangChain completion model on simulacra, for code written against `OpenAI()`.

    When a prompt carries a JSON schema in PydanticOutputParser's format instructions, the
    reply is decoded under that schema, extracting from the text after the instructions.
    """


    @property
    def _llm_type(self) -> str:
        return "simulacra-llm"

    def __call__(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        """`llm(prompt)`, as the tutorial calls it (LangChain deprecates this on other LLMs)."""
        return self.invoke(prompt, stop=stop, **kwargs)

    def _generate(self, prompts: list[str], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> LLMResult:
        return LLMResult(generations=[[Generation(text=self._answer(p, stop))] for p in prompts])

    def _answer(self, prompt: str, stop: list[str] | None) -> str:
        found = _SCHEMA_BLOCK.search(prompt)
        if found is None:
            return self._complete(prompt, stop)
        from simulacra.extract import Extractor

        schema = json.loads(found.group(1))
        schema.setdefault("type", "object")
        source = prompt[found.end():].strip() or prompt[:found.start()]
        extractor = Extractor(schema, model=self.simulacra_backend(), seed=self._next_seed())
        return json.dumps(extractor.schema.dump(extractor.extract(source)))


OpenAI = SimulacraLLM  # so `from simulacra.langchain import OpenAI` is the only change needed

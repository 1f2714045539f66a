"""Drop-ins for the LangChain "Generate Synthetic Data" tutorial's functions.

Same names and call shapes as langchain_experimental's, backed by simulacra's engine, so the
tutorial runs with only its imports changed and gets constrained decoding, validation,
dedup and grounding. Known failures of the originals that these do not share: results are
never fed back into a prompt template (a value with "{" crashed the original's next run), texts
are checked for every field value, and extraction always parses.
"""

from __future__ import annotations

import logging
from typing import Any

from simulacra.backends.registry import get_backend
from simulacra.errors import SimulacraError
from simulacra.extract import Extractor
from simulacra.generate import Generator
from simulacra.text import TextWriter

log = logging.getLogger("simulacra.langchain")

# The tutorial's template texts (kept so imports of them keep working).
SYNTHETIC_FEW_SHOT_PREFIX = (
    "This is a test about generating synthetic data about {subject}. Examples below:"
)
SYNTHETIC_FEW_SHOT_SUFFIX = (
    "Now you generate synthetic data about {subject}. Make sure to {extra}:"
)


def _example_template() -> Any:
    from langchain_core.prompts import PromptTemplate

    return PromptTemplate(input_variables=["example"], template="{example}")


OPENAI_TEMPLATE = _example_template()


def _examples_from_prompt(prompt: Any) -> list[str]:
    if prompt is None:
        return []
    template = getattr(prompt, "example_prompt", None)
    out = []
    for example in getattr(prompt, "examples", None) or []:
        out.append(template.format(**example) if template is not None else str(example))
    return out


class SyntheticDataGenerator:
    """What `create_openai_data_generator` returns: `.generate(subject, extra, runs)`."""

    def __init__(self, output_schema: Any, llm: Any, prompt: Any = None, **options: Any) -> None:
        self.output_schema = output_schema
        self.backend = get_backend(llm)
        self.temperature = getattr(llm, "temperature", None) or 0.9
        self.text_examples = _examples_from_prompt(prompt)
        self.options = options
        self.results: list[Any] = []
        self._records: list[Any] | None = None

    def example_records(self) -> list[Any]:
        """The prompt's text examples as records, extracted once (the model sees them as JSON).

        An example that does not extract into a valid record stays a text example.
        """
        if self._records is None:
            extractor = Extractor(self.output_schema, model=self.backend)
            self._records = []
            for text in self.text_examples:
                try:
                    self._records.append(extractor.extract(text))
                except (SimulacraError, ValueError) as exc:
                    log.info("example kept as text (%s): %s", exc, text[:60])
                    self._records.append(text)
        return self._records

    def generate(self, subject: str, extra: str = "", runs: int = 1, **kwargs: Any) -> list[Any]:
        generator = Generator(self.output_schema, model=self.backend,
                              examples=self.example_records(), subject=subject, extra=extra,
                              temperature=self.temperature, seed=kwargs.get("seed"))
        records = generator.generate(runs)
        self.results.extend(records)
        return records


def create_openai_data_generator(output_schema: Any, llm: Any, prompt: Any = None,
                                 **options: Any) -> SyntheticDataGenerator:
    """The tutorial's generator: any LangChain chat model, or a simulacra model."""
    return SyntheticDataGenerator(output_schema, llm, prompt, **options)


create_data_generator = create_openai_data_generator


class DataGenerationChain:
    """`create_data_generation_chain(llm)`: `chain({"fields": ..., "preferences": ...})`."""

    def __init__(self, llm: Any) -> None:
        self.writer = TextWriter(get_backend(llm), temperature=getattr(llm, "temperature", None) or 0.8)

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return self.writer(inputs)

    def invoke(self, inputs: dict[str, Any], config: Any = None, **kwargs: Any) -> dict[str, Any]:
        return self.writer(inputs)


def create_data_generation_chain(llm: Any, prompt: Any = None) -> DataGenerationChain:
    return DataGenerationChain(llm)


class DatasetGenerator:
    """`DatasetGenerator(llm, preferences)(list_of_fields)` -> [{"fields", "preferences", "text"}]."""

    def __init__(self, llm: Any, sentence_preferences: dict[str, Any] | None = None) -> None:
        self.writer = TextWriter(get_backend(llm), sentence_preferences,
                                 temperature=getattr(llm, "temperature", None) or 0.8)

    def __call__(self, fields_collection: list[Any]) -> list[dict[str, Any]]:
        return self.writer.many(fields_collection)


class ExtractionChain:
    """`create_extraction_chain_pydantic(...)`: `.run(text)` returns a list of records."""

    def __init__(self, pydantic_schema: Any, llm: Any) -> None:
        self.extractor = Extractor(pydantic_schema, model=get_backend(llm))

    def run(self, text: str) -> list[Any]:
        return self.extractor.extract_many(text)

    def invoke(self, inputs: Any, config: Any = None, **kwargs: Any) -> dict[str, Any]:
        text = inputs.get("input") if isinstance(inputs, dict) else inputs
        return {"input": text, "text": self.run(text)}


def create_extraction_chain_pydantic(pydantic_schema: Any, llm: Any, **kwargs: Any) -> ExtractionChain:
    return ExtractionChain(pydantic_schema, llm)

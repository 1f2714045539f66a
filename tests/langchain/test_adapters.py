"""LangChain adapters: the original's failures do not recur, any chat model works as a backend,
and the core package does not need LangChain."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate
from pydantic import BaseModel

from simulacra import Generator
from simulacra.backends.fake import ScriptedBackend
from simulacra.langchain import (
    SYNTHETIC_FEW_SHOT_PREFIX,
    SYNTHETIC_FEW_SHOT_SUFFIX,
    create_openai_data_generator,
)
from simulacra.langchain.models import messages_to_prompt


class Note(BaseModel):
    title: str
    body: str


def test_braces_in_results_do_not_break_later_runs():
    """langchain-experimental fed results back into its template: a "}" crashed the next run."""
    fake = ScriptedBackend().enqueue(
        '{"title": "First", "body": "Single } brace"}', '{"title": "Second", "body": "{x} and {{y}}"}',
        '{"title": "Third", "body": "an { alone"}', '{"title": "Fourth", "body": "}{ swapped"}')
    prompt = FewShotPromptTemplate(
        prefix=SYNTHETIC_FEW_SHOT_PREFIX, suffix=SYNTHETIC_FEW_SHOT_SUFFIX,
        examples=[], input_variables=["subject", "extra"],
        example_prompt=PromptTemplate(input_variables=["example"], template="{example}"))
    generator = create_openai_data_generator(output_schema=Note, llm=fake, prompt=prompt)
    first = generator.generate(subject="notes", extra="use braces", runs=2)
    second = generator.generate(subject="notes", extra="use braces", runs=2)
    assert [n.body for n in first + second] == ["Single } brace", "{x} and {{y}}", "an { alone",
                                                 "}{ swapped"]
    assert len(generator.results) == 4


def test_chat_messages_become_a_transcript_for_the_base_model():
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    prompt = messages_to_prompt([SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello"),
                                 HumanMessage("Name a colour")])
    assert prompt == "Be brief.\n\nUser: Hi\nAssistant: Hello\nUser: Name a colour\nAssistant:"


@pytest.mark.server
def test_generator_with_a_langchain_chat_model_on_a_real_server(llama_server):
    from examples.medical_billing import EXAMPLES, MedicalBilling
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=llama_server, api_key="not-needed", model="gemma-270m",
                     temperature=0.8, max_retries=0, timeout=120)
    gen = Generator(MedicalBilling, model=llm, examples=EXAMPLES, subject="medical_billing", seed=3)
    records = gen.generate(2)
    assert len(records) == 2 and all(isinstance(r, MedicalBilling) for r in records)
    assert gen.backend.name == "langchain"
    assert sum(gen.stats.routes.values()) == gen.stats.attempts


@pytest.mark.embedded
def test_chat_simulacra_structured_output_always_parses():
    from simulacra.langchain import ChatSimulacra

    structured = ChatSimulacra(temperature=1).with_structured_output(Note)
    note = structured.invoke("Write a note about the sea.")
    assert isinstance(note, Note) and note.title


def test_core_package_works_without_langchain(tmp_path):
    """Block every langchain import in a fresh interpreter: the core still runs end to end."""
    script = textwrap.dedent(f"""
        import sys, json
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0].startswith("langchain"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(tmp_path)!r})
        import simulacra
        from simulacra import Generator
        from simulacra.backends.fake import ScriptedBackend
        from simulacra.text import TextWriter
        from simulacra.extract import Extractor
        fake = ScriptedBackend().enqueue('{{"title": "Tides", "body": "Low at noon"}}', "blue sky",
                                        '{{"title": "Moon", "body": "Full tonight"}}')
        schema = {{"type": "object", "properties": {{"title": {{"type": "string"}}, "body": {{"type": "string"}}}}, "required": ["title", "body"]}}
        print(json.dumps(Generator(schema, model=fake, seed=1).generate(1)))
        print(TextWriter(fake, seed=1).write(["blue"]).grounded)
        print(json.dumps(Extractor(schema, model=fake).extract("x y")))
        try:
            import simulacra.langchain
        except ImportError as exc:
            print("IMPORT-ERROR", exc)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert json.loads(lines[0]) == [{"title": "Tides", "body": "Low at noon"}]
    assert lines[1] == "True"
    assert json.loads(lines[2]) == {"title": "Moon", "body": "Full tonight"}
    assert "pip install 'simulacra[langchain]'" in lines[3]

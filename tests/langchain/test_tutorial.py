"""The LangChain tutorial's code, all three parts, with only its imports changed.

Everything between the "tutorial" markers is the tutorial's own code (notebook cells in order);
the import lines are the only edits: LangChain's experimental modules and ChatOpenAI/OpenAI
come from simulacra.langchain instead. It runs offline on the embedded model.
"""

from __future__ import annotations

import pytest

from simulacra.text import field_values, missing_values

pytestmark = pytest.mark.embedded


def test_the_tutorial_runs_end_to_end():
    # ---- tutorial, part 1 ------------------------------------------------------------
    from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate
    from pydantic import BaseModel

    from simulacra.langchain import (
        OPENAI_TEMPLATE,
        SYNTHETIC_FEW_SHOT_PREFIX,
        SYNTHETIC_FEW_SHOT_SUFFIX,
        create_openai_data_generator,
    )
    from simulacra.langchain import ChatSimulacra as ChatOpenAI

    class MedicalBilling(BaseModel):
        patient_id: int
        patient_name: str
        diagnosis_code: str
        procedure_code: str
        total_charge: float
        insurance_claim_amount: float

    examples = [
        {
            "example": """Patient ID: 123456, Patient Name: John Doe, Diagnosis Code:
        J20.9, Procedure Code: 99203, Total Charge: $500, Insurance Claim Amount: $350"""
        },
        {
            "example": """Patient ID: 789012, Patient Name: Johnson Smith, Diagnosis
        Code: M54.5, Procedure Code: 99213, Total Charge: $150, Insurance Claim Amount: $120"""
        },
        {
            "example": """Patient ID: 345678, Patient Name: Emily Stone, Diagnosis Code:
        E11.9, Procedure Code: 99214, Total Charge: $300, Insurance Claim Amount: $250"""
        },
    ]

    OPENAI_TEMPLATE = PromptTemplate(input_variables=["example"], template="{example}")

    prompt_template = FewShotPromptTemplate(
        prefix=SYNTHETIC_FEW_SHOT_PREFIX,
        examples=examples,
        suffix=SYNTHETIC_FEW_SHOT_SUFFIX,
        input_variables=["subject", "extra"],
        example_prompt=OPENAI_TEMPLATE,
    )

    synthetic_data_generator = create_openai_data_generator(
        output_schema=MedicalBilling,
        llm=ChatOpenAI(
            temperature=1
        ),  # You'll need to replace with your actual Language Model instance
        prompt=prompt_template,
    )

    synthetic_results = synthetic_data_generator.generate(
        subject="medical_billing",
        extra="the name must be chosen at random. Make it something you wouldn't normally choose.",
        runs=10,
    )
    # ---- end of part 1 -----------------------------------------------------------------
    assert len(synthetic_results) == 10
    assert all(isinstance(r, MedicalBilling) for r in synthetic_results)
    assert len({r.model_dump_json() for r in synthetic_results}) == 10

    # ---- tutorial, part 2 --------------------------------------------------------------
    from simulacra.langchain import ChatSimulacra as ChatOpenAI
    from simulacra.langchain import (
        DatasetGenerator,
        create_data_generation_chain,
    )

    # LLM
    model = ChatOpenAI(model="gpt-3.5-turbo", temperature=0.7)
    chain = create_data_generation_chain(model)

    out1 = chain({"fields": ["blue", "yellow"], "preferences": {}})
    out2 = chain(
        {
            "fields": {"colors": ["blue", "yellow"]},
            "preferences": {"style": "Make it in a style of a weather forecast."},
        }
    )
    out3 = chain(
        {
            "fields": {"actor": "Tom Hanks", "movies": ["Forrest Gump", "Green Mile"]},
            "preferences": None,
        }
    )
    out4 = chain(
        {
            "fields": [
                {"actor": "Tom Hanks", "movies": ["Forrest Gump", "Green Mile"]},
                {"actor": "Mads Mikkelsen", "movies": ["Hannibal", "Another round"]},
            ],
            "preferences": {"minimum_length": 200, "style": "gossip"},
        }
    )

    inp = [
        {
            "Actor": "Tom Hanks",
            "Film": [
                "Forrest Gump",
                "Saving Private Ryan",
                "The Green Mile",
                "Toy Story",
                "Catch Me If You Can",
            ],
        },
        {
            "Actor": "Tom Hardy",
            "Film": [
                "Inception",
                "The Dark Knight Rises",
                "Mad Max: Fury Road",
                "The Revenant",
                "Dunkirk",
            ],
        },
    ]

    generator = DatasetGenerator(model, {"style": "informal", "minimal length": 500})
    dataset = generator(inp)
    # ---- end of part 2 -----------------------------------------------------------------
    for out in (out1, out2, out3, out4):
        assert not missing_values(out["text"], field_values(out["fields"])), out
    assert len(out4["text"]) >= 200
    assert [row["fields"] for row in dataset] == inp
    for row in dataset:
        assert len(row["text"]) >= 500 and not missing_values(row["text"], row["fields"]["Film"])

    # ---- tutorial, part 3 --------------------------------------------------------------
    from typing import List

    from langchain_core.output_parsers import PydanticOutputParser
    from langchain_core.prompts import PromptTemplate
    from pydantic import BaseModel, Field

    from simulacra.langchain import OpenAI, create_extraction_chain_pydantic

    class Actor(BaseModel):
        Actor: str = Field(description="name of an actor")
        Film: List[str] = Field(description="list of names of films they starred in")

    llm = OpenAI()
    parser = PydanticOutputParser(pydantic_object=Actor)

    prompt = PromptTemplate(
        template="Extract fields from a given text.\n{format_instructions}\n{text}\n",
        input_variables=["text"],
        partial_variables={"format_instructions": parser.get_format_instructions()},
    )

    _input = prompt.format_prompt(text=dataset[0]["text"])
    output = llm(_input.to_string())

    parsed = parser.parse(output)
    check_parser = (parsed.Actor == inp[0]["Actor"]) & (parsed.Film == inp[0]["Film"])

    extractor = create_extraction_chain_pydantic(pydantic_schema=Actor, llm=model)
    extracted = extractor.run(dataset[1]["text"])
    check_chain = (extracted[0].Actor == inp[1]["Actor"]) & (extracted[0].Film == inp[1]["Film"])
    # ---- end of part 3 -----------------------------------------------------------------
    assert isinstance(parsed, Actor)
    assert isinstance(extracted, list) and all(isinstance(a, Actor) for a in extracted)
    films_found = len(set(parsed.Film) & set(inp[0]["Film"])) + len(
        set(extracted[0].Film) & set(inp[1]["Film"]))
    print(f"part 3: parser exact={check_parser}, chain exact={check_chain}, "
          f"actors {parsed.Actor!r} / {extracted[0].Actor!r}, films found {films_found}/10: "
          f"{parsed.Film} / {extracted[0].Film}")
    # What comes back depends on the text the model wrote, which changes with the thread
    # count (llama.cpp's rounding): 0 to 8 films of 10 in about 35 runs here, once "I'm a man" as
    # the actor; bench/extraction.py measures it and lists the misses. What holds for every
    # text: the parts run, and every value extracted is stated in its text.
    for actor, films, text in ((parsed.Actor, parsed.Film, dataset[0]["text"]),
                               (extracted[0].Actor, extracted[0].Film, dataset[1]["text"])):
        assert actor and not missing_values(text, [actor, *films]), (actor, films, text)

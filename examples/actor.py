"""The tutorial's Actor schema (part 3) and its two inputs, for the round-trip benchmark.

    simulacra roundtrip examples/actor.py:Actor -n 10 --examples examples/actor.jsonl
"""

from pydantic import BaseModel, Field


class Actor(BaseModel):
    Actor: str = Field(description="name of an actor")
    Film: list[str] = Field(description="list of names of films they starred in")


EXAMPLES = [
    {"Actor": "Tom Hanks", "Film": ["Forrest Gump", "Saving Private Ryan", "The Green Mile",
                                    "Toy Story", "Catch Me If You Can"]},
    {"Actor": "Tom Hardy", "Film": ["Inception", "The Dark Knight Rises", "Mad Max: Fury Road",
                                    "The Revenant", "Dunkirk"]},
]

"""A pydantic schema that uses every supported feature, for the embedded-model tests."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Literal

from pydantic import BaseModel, Field


class Plan(enum.StrEnum):
    basic = "basic"
    pro = "pro"


class Address(BaseModel):
    city: str = Field(max_length=30, description="a city name")
    postcode: str = Field(pattern=r"^[0-9]{5}$")


class Customer(BaseModel):
    """A customer of a software company."""

    id: uuid.UUID
    name: str = Field(min_length=2, max_length=40, description="full name")
    age: int = Field(ge=18, le=99)
    score: float = Field(gt=0, lt=1)
    plan: Plan
    channel: Literal["web", "phone", "store"]
    active: bool
    signed_up: dt.date
    last_seen: dt.datetime
    address: Address
    tags: list[str] = Field(min_length=1, max_length=3)
    referrer: str | None = Field(default=None, max_length=20)


class Pet(BaseModel):
    """A small record: fast to decode through llama.cpp's server, for the fault tests.

    Every constraint is one the server's JSON grammar enforces (it does not enforce numeric
    bounds: with `age <= 30` the 270M model wrote ages above 30 on 14 of 50 records through
    all 8 attempts), so the faults, not the model, are what these tests exercise."""

    name: str = Field(min_length=2, max_length=16)
    kind: Literal["cat", "dog", "bird", "fish"]
    age: int

"""Schemas of the labelled extraction set (tests/data/extraction_set.jsonl), one per domain."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TableBooking(BaseModel):
    name: str | None = Field(None, description="who the table is for")
    restaurant: str | None = Field(None, description="name of the restaurant")
    day: str | None = Field(None, description="day of the booking, as written")
    time: str | None = Field(None, description="time of the booking, as written")
    party_size: int | None = Field(None, description="number of people")


class Flight(BaseModel):
    origin: str | None = Field(None, description="city the flight leaves from")
    destination: str | None = Field(None, description="city the flight goes to")
    date: str | None = Field(None, description="travel date, as written")
    airline: str | None = Field(None, description="airline name")


class Contact(BaseModel):
    person: str | None = Field(None, description="full name of the person")
    company: str | None = Field(None, description="company they work for")
    city: str | None = Field(None, description="city they are based in")
    email: str | None = Field(None, description="email address")


class Purchase(BaseModel):
    product: str | None = Field(None, description="product bought")
    quantity: int | None = Field(None, description="how many were bought")
    store: str | None = Field(None, description="shop or website")
    price: float | None = Field(None, description="price paid per item, a number")


SCHEMAS = {"booking": TableBooking, "flight": Flight, "contact": Contact, "purchase": Purchase}

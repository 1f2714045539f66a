"""Pydantic models for the six SNIPS intents, as a user would describe them for
`Extractor`: every slot an optional string with a one-line description. Used by
bench/extraction.py (the queries themselves are read from ../shared/corpus/snips)."""

from __future__ import annotations

from pydantic import BaseModel, Field, create_model

# intent -> (what a query of it is, {slot: description})
SLOTS: dict[str, tuple[str, dict[str, str]]] = {
    "AddToPlaylist": ("A request to add a song, an artist or an album to a playlist.", {
        "artist": "the musician or band whose music is added",
        "entity_name": "the name of the song or album added",
        "music_item": "the kind of thing added: song, track, album, tune",
        "playlist": "the name of the playlist",
        "playlist_owner": "whose playlist it is: my, your, a person's name",
    }),
    "GetWeather": ("A question about the weather.", {
        "city": "the city the forecast is for",
        "condition_description": "a weather condition asked about: rain, snow, fog, sunny",
        "condition_temperature": "a temperature word: hot, cold, warm",
        "country": "the country the forecast is for",
        "current_location": "where the user is now: here, my location",
        "geographic_poi": "a named place such as a park or a mountain",
        "spatial_relation": "a relation to a place: near, close to, far from",
        "state": "the state or region the forecast is for",
        "time_range": "when: a date, a time, a day, tomorrow, next week",
    }),
    "PlayMusic": ("A request to play music.", {
        "album": "the album to play",
        "artist": "the musician or band to play",
        "genre": "a music genre: jazz, rock, pop",
        "music_item": "the kind of thing to play: song, track, album",
        "playlist": "a playlist to play",
        "service": "the streaming service to play it on",
        "sort": "an ordering such as newest, top, popular",
        "track": "the song to play",
        "year": "a year or decade of the music",
    }),
    "RateBook": ("A rating given to a book or another written work.", {
        "best_rating": "the top of the rating scale, e.g. 6 in '4 out of 6'",
        "object_name": "the title of the work rated",
        "object_part_of_series_type": "series, saga, chronicle",
        "object_select": "which one: this, the current, the previous",
        "object_type": "the kind of work: book, novel, essay, textbook",
        "rating_unit": "the unit of the rating: stars, points",
        "rating_value": "the rating given, e.g. 4 in '4 out of 6'",
    }),
    "SearchCreativeWork": ("A search for a film, a song, a book, a game or a TV show.", {
        "object_name": "the title searched for",
        "object_type": "the kind of work: movie, song, book, game, show",
    }),
    "SearchScreeningEvent": ("A search for film showtimes at cinemas.", {
        "location_name": "the name of a cinema",
        "movie_name": "the title of a film",
        "movie_type": "a kind of film: animated movies, films",
        "object_location_type": "a kind of place: cinema, movie theatre",
        "object_type": "what is searched: schedule, showtimes",
        "spatial_relation": "a relation to a place: nearest, close by",
        "time_range": "when: a date, a time, a day, this evening",
    }),
}


def intent_model(name: str) -> type[BaseModel]:
    doc, slots = SLOTS[name]
    fields = {slot: (str | None, Field(None, description=text)) for slot, text in slots.items()}
    return create_model(name, __doc__=doc, **fields)


INTENTS = {
    "add_to_playlist": intent_model("AddToPlaylist"),
    "get_weather": intent_model("GetWeather"),
    "play_music": intent_model("PlayMusic"),
    "rate_book": intent_model("RateBook"),
    "search_creative_work": intent_model("SearchCreativeWork"),
    "search_screening_event": intent_model("SearchScreeningEvent"),
}

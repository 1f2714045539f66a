"""Pydantic models for the six SNIPS intents, written as a user would write them for
`Extractor`: every slot an optional string, a one-line description each. Used by
bench/extraction.py (the queries themselves are read from ../shared/corpus/snips)."""

from __future__ import annotations

from pydantic import BaseModel, Field

Slot = str | None


class AddToPlaylist(BaseModel):
    """A request to add a song, an artist or an album to a playlist."""

    artist: Slot = Field(None, description="the musician or band whose music is added")
    entity_name: Slot = Field(None, description="the name of the song or album added")
    music_item: Slot = Field(None, description="the kind of thing added: song, track, album, tune")
    playlist: Slot = Field(None, description="the name of the playlist")
    playlist_owner: Slot = Field(None, description="whose playlist it is: my, your, a person's name")


class GetWeather(BaseModel):
    """A question about the weather."""

    city: Slot = Field(None, description="the city the forecast is for")
    condition_description: Slot = Field(None, description="a weather condition asked about: rain, "
                                     "snow, fog, sunny")
    condition_temperature: Slot = Field(None, description="a temperature word: hot, cold, warm")
    country: Slot = Field(None, description="the country the forecast is for")
    current_location: Slot = Field(None, description="where the user is now: here, my location")
    geographic_poi: Slot = Field(None, description="a named place such as a park or a mountain")
    spatial_relation: Slot = Field(None, description="a relation to a place: near, close to, far from")
    state: Slot = Field(None, description="the state or region the forecast is for")
    time_range: Slot = Field(None, description="when: a date, a time, a day, tomorrow, next week")


class PlayMusic(BaseModel):
    """A request to play music."""

    album: Slot = Field(None, description="the album to play")
    artist: Slot = Field(None, description="the musician or band to play")
    genre: Slot = Field(None, description="a music genre: jazz, rock, pop")
    music_item: Slot = Field(None, description="the kind of thing to play: song, track, album")
    playlist: Slot = Field(None, description="a playlist to play")
    service: Slot = Field(None, description="the streaming service to play it on")
    sort: Slot = Field(None, description="an ordering such as newest, top, popular")
    track: Slot = Field(None, description="the song to play")
    year: Slot = Field(None, description="a year or decade of the music")


class RateBook(BaseModel):
    """A rating given to a book or another written work."""

    best_rating: Slot = Field(None, description="the top of the rating scale, e.g. 6 in '4 out of 6'")
    object_name: Slot = Field(None, description="the title of the work rated")
    object_part_of_series_type: Slot = Field(None, description="series, saga, chronicle")
    object_select: Slot = Field(None, description="which one: this, the current, the previous")
    object_type: Slot = Field(None, description="the kind of work: book, novel, essay, textbook")
    rating_unit: Slot = Field(None, description="the unit of the rating: stars, points")
    rating_value: Slot = Field(None, description="the rating given, e.g. 4 in '4 out of 6'")


class SearchCreativeWork(BaseModel):
    """A search for a film, a song, a book, a game or a TV show."""

    object_name: Slot = Field(None, description="the title searched for")
    object_type: Slot = Field(None, description="the kind of work: movie, song, book, game, show")


class SearchScreeningEvent(BaseModel):
    """A search for film showtimes at cinemas."""

    location_name: Slot = Field(None, description="the name of a cinema")
    movie_name: Slot = Field(None, description="the title of a film")
    movie_type: Slot = Field(None, description="a kind of film: animated movies, films")
    object_location_type: Slot = Field(None, description="a kind of place: cinema, movie theatre")
    object_type: Slot = Field(None, description="what is searched: schedule, showtimes")
    spatial_relation: Slot = Field(None, description="a relation to a place: nearest, close by")
    time_range: Slot = Field(None, description="when: a date, a time, a day, this evening")


INTENTS = {
    "add_to_playlist": AddToPlaylist,
    "get_weather": GetWeather,
    "play_music": PlayMusic,
    "rate_book": RateBook,
    "search_creative_work": SearchCreativeWork,
    "search_screening_event": SearchScreeningEvent,
}

"""metadata.places: positions to the named place, offline, on known coordinates."""

from __future__ import annotations

import socket

import pytest

from imagefind.metadata import places
from imagefind.metadata.places import Place, place_at
from tests.exifkit import AT_SEA, LISBON, SYDNEY, TOKYO


@pytest.mark.parametrize(
    ("where", "place"),
    [
        (LISBON, Place("Lisbon", "Lisbon", "Portugal", "PT")),
        (TOKYO, Place("Tokyo", "Tokyo", "Japan", "JP")),
        (SYDNEY, Place("Sydney", "New South Wales", "Australia", "AU")),
        ((64.1466, -21.9426), Place("Reykjavík", "Capital Region", "Iceland", "IS")),
        ((40.7580, -73.9855), Place("New York City", "New York", "United States", "US")),
        ((35.4437, 139.6380), Place("Yokohama", "Kanagawa", "Japan", "JP")),  # not Tokyo
        ((38.7979, -9.3880), Place("Sintra", "Lisbon", "Portugal", "PT")),  # not Lisbon
    ],
)
def test_known_places(where: tuple[float, float], place: Place) -> None:
    assert place_at(*where) == place


@pytest.mark.parametrize("where", [AT_SEA, (-60.0, -120.0), (91.0, 0.0), (0.0, 181.0)])
def test_no_place_at_sea_or_off_the_globe(where: tuple[float, float]) -> None:
    assert place_at(*where) is None


def test_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a network call")

    monkeypatch.setattr(places, "_loaded", [])  # loaded again, under the patch
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert place_at(48.8566, 2.3522) == Place("Paris", "Île-de-France", "France", "FR")

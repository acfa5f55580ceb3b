"""Atomic netCDF writes, attribute sanitising and provenance."""

import json

import numpy as np
import pytest
import xarray as xr

from pipeline.storage import config_hash, read_netcdf, write_netcdf


def _dataset():
    return xr.Dataset(
        {"phi": (("atom",), np.array([1.0, -2.5, 3.25]), {"units": "e/A", "long_name": "potential"})},
        attrs={"flag": True, "nothing": None, "mapping": {"a": 1}, "ranks": [3, 4, 5], "names": ["x", "y"]},
    )


def test_round_trip_keeps_values_and_turns_attrs_storable(tmp_path):
    path = write_netcdf(_dataset(), tmp_path / "sub" / "out.nc")
    back = read_netcdf(path)
    np.testing.assert_array_equal(back["phi"].values, [1.0, -2.5, 3.25])
    assert back["phi"].attrs["units"] == "e/A"
    assert back.attrs["flag"] == 1
    assert json.loads(back.attrs["nothing"]) is None
    assert json.loads(back.attrs["mapping"]) == {"a": 1}
    assert list(back.attrs["ranks"]) == [3, 4, 5]
    assert json.loads(back.attrs["names"]) == ["x", "y"]


def test_failed_write_leaves_no_file(tmp_path):
    bad = _dataset()
    bad["phi"].attrs["unstorable"] = object()
    target = tmp_path / "out.nc"
    with pytest.raises(Exception):
        write_netcdf(bad, target)
    assert list(tmp_path.iterdir()) == []


def test_leftover_temporary_of_a_killed_write_is_removed(tmp_path):
    stale = tmp_path / ".out.nc.abc123.tmp"
    stale.write_bytes(b"half a file")
    write_netcdf(_dataset(), tmp_path / "out.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        read_netcdf(tmp_path / "missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    with pytest.raises(ValueError, match="junk.nc"):
        read_netcdf(junk)


def test_config_hash_ignores_key_order_but_not_values():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_written_file_has_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = write_netcdf(_dataset(), tmp_path / "out.nc")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644

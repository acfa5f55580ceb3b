"""Atomic netCDF writes, attribute sanitising and provenance."""

import json

import numpy as np
import pytest
import xarray as xr

from pipeline.storage import config_hash, read_netcdf, read_variables, write_netcdf, write_variables


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


def _crash_after_partial_write(monkeypatch, exception):
    """Make every netCDF write put a few bytes into the file it was given, then fail."""

    def partial_then_fail(self, path, *args, **kwargs):
        with open(path, "wb") as stream:
            stream.write(b"CDF\x01 half a header")
        raise exception

    monkeypatch.setattr(xr.Dataset, "to_netcdf", partial_then_fail)


@pytest.mark.parametrize("exception", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_crash_part_way_leaves_the_existing_file_unchanged(tmp_path, monkeypatch, exception):
    target = write_netcdf(_dataset(), tmp_path / "out.nc")
    before = target.read_bytes()
    _crash_after_partial_write(monkeypatch, exception)
    newer = _dataset()
    newer["phi"] = newer["phi"] * 2.0
    with pytest.raises(type(exception)):
        write_netcdf(newer, target)
    assert target.read_bytes() == before  # the old file, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]  # no temporary left behind
    np.testing.assert_array_equal(read_netcdf(target)["phi"].values, [1.0, -2.5, 3.25])


def test_crash_part_way_leaves_no_file_when_there_was_none(tmp_path, monkeypatch):
    _crash_after_partial_write(monkeypatch, OSError(5, "Input/output error"))
    with pytest.raises(OSError, match="Input/output error"):
        write_netcdf(_dataset(), tmp_path / "out.nc")
    assert list(tmp_path.iterdir()) == []


def _write(kind, target):
    """One of the atomic writers onto ``target``: an xarray Dataset, plain variables or bytes."""
    from pipeline.storage import atomic_write_bytes

    if kind == "netcdf":
        write_netcdf(_dataset(), target)
    elif kind == "variables":
        write_variables(_variables(), {"flag": True}, target)
    else:
        atomic_write_bytes(target, b"the new result")


def _variables():
    return {
        "core": (("r1", "r2"), np.arange(6.0).reshape(2, 3), {"units": "e/A"}),
        "charge": (("atom",), np.array([0.5, np.nan, -0.5]), {"units": "e"}),
        "count": (("atom",), np.array([1, 2, 3], dtype=np.int64), {}),
        "energy": ((), np.float64(-1.25), {"units": "e^2/A"}),
        "xyz": (("xyz",), np.array(["x", "y", "z"], dtype=object), {"long_name": "Cartesian axis"}),
        "axis_label": (("xyz",), np.array(["east", "north", "up"], dtype=object), {"units": "1"}),
        "rank_label": (("r2",), np.array([10, 20, 30]), {"units": "1"}),
        "run_label": ((), np.array("first", dtype=object), {}),
    }


LABELS = ("axis_label", "rank_label", "run_label")


def test_plain_variables_read_back_as_the_dataset_xarray_would_write(tmp_path):
    variables = _variables()
    attrs = {"flag": True, "nothing": None, "ranks": [3, 4, 5], "names": ["x", "y"], "cell": [], "tolerance": 1e-6}
    path = write_variables(variables, attrs, tmp_path / "sub" / "plain.nc", coordinates=LABELS, compress=True)
    data = {name: v for name, v in variables.items() if name not in LABELS}
    expected = xr.Dataset(data, coords={name: variables[name] for name in LABELS}, attrs=attrs)
    write_netcdf(expected, tmp_path / "by_xarray.nc")
    back, reference = read_netcdf(path), read_netcdf(tmp_path / "by_xarray.nc")
    assert back.identical(reference)  # values, NaN, dims, coordinates, dtypes and every attribute
    assert sorted(back.coords) == ["axis_label", "rank_label", "run_label", "xyz"]
    assert back["charge"].encoding["_FillValue"] is not None and np.isnan(back["charge"].encoding["_FillValue"])
    values, file_attrs = read_variables(path, ("core", "charge", "absent"))
    assert sorted(values) == ["charge", "core"]
    np.testing.assert_array_equal(values["core"], np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(values["charge"], [0.5, np.nan, -0.5])  # fill value not masked
    assert file_attrs["flag"] == 1 and json.loads(file_attrs["cell"]) == [] and list(file_attrs["ranks"]) == [3, 4, 5]


def test_plain_variables_of_inconsistent_sizes_are_refused_naming_both(tmp_path):
    bad = {"a": (("atom",), np.zeros(3), {}), "b": (("atom",), np.zeros(4), {})}
    with pytest.raises(ValueError, match="'atom' is 3 long in 'a' but 4 in 'b'"):
        write_variables(bad, {}, tmp_path / "out.nc")
    with pytest.raises(ValueError, match="'c' has 2 axes"):
        write_variables({"c": (("atom",), np.zeros((2, 2)), {})}, {}, tmp_path / "out.nc")
    assert list(tmp_path.iterdir()) == []


def test_plain_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        read_variables(tmp_path / "missing.nc", ("a",))
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    with pytest.raises(ValueError, match="junk.nc: not a readable netCDF file"):
        read_variables(junk, ("a",))


def test_failed_plain_write_leaves_the_existing_file(tmp_path):
    target = write_variables(_variables(), {}, tmp_path / "out.nc")
    before = target.read_bytes()
    unstorable = _variables()
    unstorable["count"] = (("atom",), np.array([1, 2, 3]), {"bad": object()})
    with pytest.raises(Exception):
        write_variables(unstorable, {}, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]


@pytest.mark.parametrize("write", ["netcdf", "variables", "bytes"])
def test_failed_rename_leaves_the_existing_file_and_no_temporary(tmp_path, monkeypatch, write):
    import os

    target = tmp_path / "out.nc"
    target.write_bytes(b"the previous result")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError) as info:
        _write(write, target)
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    assert target.read_bytes() == b"the previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]


@pytest.mark.parametrize("write", ["netcdf", "variables", "bytes"])
def test_writing_onto_a_directory_names_the_path_given(tmp_path, write):
    folder = tmp_path / "results.nc"
    folder.mkdir()
    (folder / "inside.txt").write_text("kept")
    with pytest.raises(IsADirectoryError) as info:
        _write(write, folder)
    message = str(info.value)
    assert message.startswith(f"{folder}:") and "directory" in message
    assert ".tmp" not in message  # not the hidden temporary name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.nc"]
    assert (folder / "inside.txt").read_text() == "kept"

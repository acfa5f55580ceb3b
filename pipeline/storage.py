"""Reading and writing netCDF files: atomic writes, compression, provenance attributes.

Every stage writes its result through :func:`write_netcdf`, which writes to a temporary
file beside the target and renames it, so an interrupted job never leaves a partial file
behind. Attributes that netCDF cannot store (bool, None, dict, list of str) are turned into
ints or JSON strings first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import xarray as xr

from pipeline import __version__

#: Packages whose versions go into every output file.
PROVENANCE_PACKAGES = ("numpy", "scipy", "xarray", "netCDF4", "MDAnalysis", "tensorly", "cupy")


def package_versions(packages: Iterable[str] = PROVENANCE_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages``; packages that are not installed are left out."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def provenance_attrs(**extra: Any) -> dict[str, Any]:
    """Global attributes every output file carries: pipeline version, Python and package versions."""
    attrs = {
        "pipeline_version": __version__,
        "python_version": platform.python_version(),
        "package_versions": json.dumps(package_versions(), sort_keys=True),
    }
    attrs.update(extra)
    return attrs


def config_hash(config: Any) -> str:
    """SHA-256 (first 16 hex digits) of a JSON-serialisable configuration, keys sorted."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _netcdf_attr(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if value is None or isinstance(value, (dict, list, tuple)) and not _is_numeric_sequence(value):
        return json.dumps(value, default=str)
    return value


def _is_numeric_sequence(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value)
    )


def sanitize_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Return ``attrs`` with values netCDF can hold (bool→int; None, dict, str lists→JSON)."""
    return {key: _netcdf_attr(value) for key, value in attrs.items()}


def _check_target(path: Path) -> None:
    """Raise ``IsADirectoryError`` naming ``path`` when it is an existing folder."""
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; give a file name to write to")


def _fsync(name: str) -> None:
    """Flush a closed file's data to disk, so the rename never publishes a file still in the page cache."""
    with open(name, "rb") as stream:
        os.fsync(stream.fileno())


def _publish(tmp_name: str, path: Path) -> None:
    """Rename the finished temporary file onto ``path``; errors name ``path``, not the temporary."""
    _fsync(tmp_name)
    try:
        os.replace(tmp_name, path)
    except OSError as exc:
        raise type(exc)(exc.errno, f"{path}: cannot replace it with the written file ({exc.strerror})") from exc


def _temporary_sibling(path: Path) -> str:
    """Create an empty temporary file beside ``path``, removing leftovers of killed earlier writes."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes 0600; give the final file the usual mode
    return tmp_name


def write_netcdf(dataset: xr.Dataset, path: str | os.PathLike, *, compress: bool = True) -> Path:
    """Write ``dataset`` to ``path`` atomically (temporary file in the same folder, then rename).

    A temporary file left by an earlier write of the same path that was killed is removed first.
    A write that fails part-way leaves an existing ``path`` as it was and removes its temporary
    file; the finished temporary file is flushed to disk before the rename.

    Parameters
    ----------
    dataset : xarray.Dataset
        Variables must be NumPy-backed (call ``to_host`` on device arrays first).
    path : path-like
        Target file; its parent folders are created.
    compress : bool
        zlib level 4 for every numeric variable.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    IsADirectoryError
        When ``path`` is an existing folder (naming it).
    """
    path = Path(path)
    _check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset = dataset.copy()
    dataset.attrs = sanitize_attrs(dataset.attrs)
    for name in dataset.variables:
        dataset[name].attrs = sanitize_attrs(dataset[name].attrs)
    encoding = {}
    if compress:
        for name, variable in dataset.variables.items():
            if variable.dtype.kind in "iufc" and variable.ndim > 0:
                encoding[name] = {"zlib": True, "complevel": 4}
    tmp_name = _temporary_sibling(path)
    try:
        dataset.to_netcdf(tmp_name, engine="netcdf4", encoding=encoding)
        _publish(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def read_netcdf(path: str | os.PathLike, variables: Sequence[str] | None = None) -> xr.Dataset:
    """Open a netCDF file written by :func:`write_netcdf` fully into memory.

    ``variables``, when given, limits what is read to those of the named variables that the
    file has (with their coordinates and the file's attributes).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist, naming it.
    ValueError
        When the file is not a readable netCDF file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with xr.open_dataset(path, engine="netcdf4") as dataset:
            if variables is not None:
                dataset = dataset[[name for name in variables if name in dataset]]
            return dataset.load()
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable netCDF file ({exc})") from exc


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write raw bytes to ``path`` through a temporary file and a rename."""
    path = Path(path)
    _check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = _temporary_sibling(path)
    try:
        with open(tmp_name, "wb") as stream:
            stream.write(data)
        _publish(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Name of a temporary file beside ``path``, renamed to ``path`` when the block succeeds.

    For writers that stream to a file name (text, gzip); the temporary file is removed when the
    block raises, so ``path`` is either the complete new file or untouched.

    Raises
    ------
    IsADirectoryError
        When ``path`` is an existing folder, naming it.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = _temporary_sibling(path)
    try:
        yield tmp_name
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise

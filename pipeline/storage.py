"""Reading and writing netCDF files: atomic writes, compression, provenance attributes.

Every stage writes its result through :func:`write_netcdf` (an xarray Dataset) or
:func:`write_variables` (plain arrays, through netCDF4 alone), which write to a temporary file
beside the target and rename it, so an interrupted job never leaves a partial file behind.
Attributes that netCDF cannot store (bool, None, dict, list of str) are turned into ints or
JSON strings first. :func:`read_netcdf` opens a file as an xarray Dataset and
:func:`read_variables` reads named arrays and the attributes without xarray: importing xarray
and pandas takes ~0.25 s, a tenth of a 10⁵-atom potential run, so the potential stage does
without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from pipeline import __version__

if TYPE_CHECKING:
    import xarray as xr

#: One variable for :func:`write_variables`: (dimension names, values, attributes).
Variable = tuple[tuple[str, ...], Any, dict]

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


@contextlib.contextmanager
def _atomic_target(path: Path) -> Iterator[str]:
    """Temporary file beside ``path`` to write, flushed and renamed onto ``path`` when the block succeeds.

    The parent folders are created; a block that raises removes the temporary file and leaves
    an existing ``path`` as it was.
    """
    _check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = _temporary_sibling(path)
    try:
        yield tmp_name
        _publish(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


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
    dataset = dataset.copy()
    dataset.attrs = sanitize_attrs(dataset.attrs)
    for name in dataset.variables:
        dataset[name].attrs = sanitize_attrs(dataset[name].attrs)
    encoding = {}
    if compress:
        for name, variable in dataset.variables.items():
            if variable.dtype.kind in "iufc" and variable.ndim > 0:
                encoding[name] = {"zlib": True, "complevel": 4}
    with _atomic_target(path) as tmp_name:
        dataset.to_netcdf(tmp_name, engine="netcdf4", encoding=encoding)
    return path


def write_variables(variables: Mapping[str, Variable], attrs: Mapping[str, Any], path: str | os.PathLike, *,
                    coordinates: Sequence[str] = (), compress: bool = False) -> Path:
    """Write plain arrays as a netCDF file, atomically, without xarray (as :func:`write_netcdf`).

    Floating-point variables get a NaN ``_FillValue``, text variables are variable-length
    strings and the ``coordinates`` are listed in the CF ``coordinates`` attribute of every
    other variable whose dimensions include theirs (the rest in a global one), as xarray writes
    them, so :func:`read_netcdf` reads the file back as the Dataset xarray would have written.
    A variable named like its only dimension is that dimension's coordinate.

    Parameters
    ----------
    variables : mapping of name to (dims, values, attrs)
        NumPy values (any shape; 0-d with ``dims = ()``), one size per dimension name.
    attrs : mapping
        Global attributes (sanitised as in :func:`sanitize_attrs`).
    path : path-like
    coordinates : sequence of str
        Names of the variables that are non-index coordinates (labels such as ``sh_l``).
    compress : bool
        zlib level 4 for every numeric variable of at least one dimension.

    Raises
    ------
    IsADirectoryError
        When ``path`` is an existing folder (naming it).
    ValueError
        When two variables give one dimension different sizes (naming both).
    """
    import netCDF4

    path = Path(path)
    sizes: dict[str, tuple[int, str]] = {}
    for name, (dims, values, _) in variables.items():
        shape = np.shape(values)
        if len(dims) != len(shape):
            raise ValueError(f"{path}: variable {name!r} has {len(shape)} axes but dimensions {dims}")
        for dim, size in zip(dims, shape):
            known, first = sizes.setdefault(dim, (size, name))
            if known != size:
                raise ValueError(f"{path}: dimension {dim!r} is {known} long in {first!r} but {size} in {name!r}")
    labels = {name: variables[name][0] for name in coordinates}
    attached: set[str] = set()
    with _atomic_target(path) as tmp_name, netCDF4.Dataset(tmp_name, "w", format="NETCDF4") as out:
        for dim, (size, _) in sizes.items():
            out.createDimension(dim, size)
        for name, (dims, values, var_attrs) in variables.items():
            var_attrs = dict(var_attrs)
            if name not in labels and name not in dims:
                own = [label for label, label_dims in labels.items() if set(label_dims) <= set(dims)]
                attached.update(own)
                if own:
                    var_attrs["coordinates"] = " ".join(own)
            values = np.asarray(values)
            if values.dtype.kind in "OUS":
                variable = out.createVariable(name, str, dims)
                variable[...] = values.astype(object)
            else:
                variable = out.createVariable(name, values.dtype, dims, fill_value=np.nan if values.dtype.kind == "f" else None,
                                              zlib=compress and values.ndim > 0, complevel=4)
                variable[...] = values
            variable.setncatts(sanitize_attrs(var_attrs))
        unattached = [label for label in labels if label not in attached]
        out.setncatts(sanitize_attrs({**attrs, **({"coordinates": " ".join(unattached)} if unattached else {})}))
    return path


def _existing(path: str | os.PathLike) -> Path:
    """``path`` as a Path; FileNotFoundError naming it when there is no such file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path


@contextlib.contextmanager
def _readable(path: Path) -> Iterator[None]:
    """Turn a reader's OSError or ValueError into one ValueError naming ``path``."""
    try:
        yield
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable netCDF file ({exc})") from exc


def read_variables(path: str | os.PathLike, names: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The named variables that a netCDF file has, as NumPy arrays, and its global attributes, without xarray.

    Values are as stored (scale/offset applied, fill values not masked: NaN stays NaN).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist, naming it.
    ValueError
        When the file is not a readable netCDF file.
    """
    import netCDF4

    path = _existing(path)
    with _readable(path), netCDF4.Dataset(path) as dataset:
        dataset.set_auto_mask(False)
        values = {name: np.asarray(dataset.variables[name][...]) for name in names if name in dataset.variables}
        attrs = {key: dataset.getncattr(key) for key in dataset.ncattrs()}
    return values, attrs


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
    import xarray as xr

    path = _existing(path)
    with _readable(path), xr.open_dataset(path, engine="netcdf4") as dataset:
        if variables is not None:
            dataset = dataset[[name for name in variables if name in dataset]]
        return dataset.load()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write raw bytes to ``path`` through a temporary file and a rename."""
    path = Path(path)
    with _atomic_target(path) as tmp_name, open(tmp_name, "wb") as stream:
        stream.write(data)
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

"""The one module that decides the array library: NumPy on the CPU, CuPy on a GPU.

Numerical code never imports CuPy. Functions that receive arrays ask
:func:`namespace_of` for the array module of their inputs; constructors without array
input take an explicit ``xp=`` argument obtained from :func:`get_xp`. The command line
maps ``--device {cpu,cuda,auto}`` to a module with :func:`xp_for_device`. Nothing here
reads global state or environment variables.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

from pipeline.devices import DEVICES  # noqa: F401 - re-exported: the --device names

BACKENDS = ("numpy", "cupy")
#: Annotation of arrays that may live on either backend (numpy.ndarray or cupy.ndarray).
Array = Any


def _import_cupy() -> ModuleType:
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "backend 'cupy' needs CuPy: install it with `pip install -e \".[gpu]\"` (cupy-cuda12x, CUDA 12 driver) "
            "or `pip install -e \".[gpu-cuda13]\"` (cupy-cuda13x, CUDA 13 driver) on a machine with an NVIDIA GPU"
        ) from exc
    return cupy


def _device_count(cupy: ModuleType) -> int:
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # noqa: BLE001 - a missing driver or library means no usable device
        return 0


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        return False
    return _device_count(cupy) > 0


def get_xp(name: str) -> ModuleType:
    """Return the array module called ``name``.

    Parameters
    ----------
    name : {"numpy", "cupy"}

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    RuntimeError
        For ``"cupy"`` when CuPy cannot be imported.
    """
    if name == "numpy":
        return np
    if name == "cupy":
        return _import_cupy()
    raise ValueError(f"unknown array backend {name!r}; expected one of {', '.join(BACKENDS)}")


def xp_for_device(device: str) -> ModuleType:
    """Map a command-line device choice to an array module.

    Parameters
    ----------
    device : {"cpu", "cuda", "auto"}
        ``"auto"`` picks CuPy when a CUDA device is usable, else NumPy.
    """
    if device == "cpu":
        return np
    if device == "cuda":
        cupy = get_xp("cupy")
        if _device_count(cupy) < 1:
            raise RuntimeError("device 'cuda': CuPy is installed but finds no usable CUDA device "
                               "(check the driver and CUDA_VISIBLE_DEVICES, or use --device cpu)")
        return cupy
    if device == "auto":
        return get_xp("cupy") if cupy_available() else np
    raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")


def namespace_of(*arrays: Any) -> ModuleType:
    """Return the array module shared by ``arrays`` (NumPy for scalars and lists).

    Raises
    ------
    TypeError
        When arrays from NumPy and CuPy are mixed.
    """
    modules = set()
    for array in arrays:
        module = type(array).__module__.split(".")[0]
        modules.add("cupy" if module == "cupy" else "numpy")
    if len(modules) > 1:
        raise TypeError("arrays from different backends were mixed (numpy and cupy); move them to one device first")
    return get_xp(modules.pop()) if modules else np


def scatter_add(out: Any, indices: Any, values: Any) -> None:
    """``out[indices] += values`` in place, repeated indices accumulated (``np.add.at``, ``cupyx.scatter_add``)."""
    if backend_name(namespace_of(out, indices, values)) == "cupy":
        importlib.import_module("cupyx").scatter_add(out, indices, values)
    else:
        np.add.at(out, indices, values)


def out_of_memory_message(exc: MemoryError, setting: str) -> str:
    """One line for an out-of-memory error: what was being allocated, what the device has, what to change.

    Parameters
    ----------
    exc : MemoryError
        NumPy's, or CuPy's ``cupy.cuda.memory.OutOfMemoryError`` (a ``MemoryError`` that carries the
        requested and already allocated bytes).
    setting : str
        The option that lowers the memory needed, as the user should read it.
    """
    size, total = getattr(exc, "_size", None), getattr(exc, "_total", None)
    where = "host"
    need = ""
    if size is not None:
        where = "device"
        need = f"; the step needed more than {(size + max(total or 0, 0)) / 2**30:.2f} GiB"
        try:
            free, capacity = importlib.import_module("cupy").cuda.runtime.memGetInfo()
            need += f" of the device's {capacity / 2**30:.1f} GiB"
        except Exception:  # noqa: BLE001 - the size is reported without the capacity
            pass
    detail = str(exc).strip() or type(exc).__name__
    return f"out of {where} memory ({detail}){need}; {setting}"


def backend_name(xp: ModuleType) -> str:
    """Name of an array module as used in provenance attributes: ``"numpy"`` or ``"cupy"``."""
    return "cupy" if xp.__name__.split(".")[0] == "cupy" else "numpy"


def to_host(array: Any) -> np.ndarray:
    """Copy an array of either backend to a NumPy array (no copy for NumPy input)."""
    if type(array).__module__.split(".")[0] == "cupy":
        return array.get()
    return np.asarray(array)


def synchronize(xp: ModuleType) -> None:
    """Wait for queued device work (a no-op for NumPy); call before reading a timer."""
    if backend_name(xp) == "cupy":
        xp.cuda.get_current_stream().synchronize()


def special_functions(xp: ModuleType) -> ModuleType:
    """``scipy.special`` for NumPy, ``cupyx.scipy.special`` for CuPy (erf, erfc, erfcx, ...)."""
    if backend_name(xp) == "numpy":
        return importlib.import_module("scipy.special")
    return importlib.import_module("cupyx.scipy.special")

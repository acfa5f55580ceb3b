"""Memory guards: how much memory a step may use, and a refusal before it allocates more.

Stages estimate the bytes of their largest arrays before allocating them and call
:func:`check_memory`, which compares the estimate with a limit: the ``--max-memory`` the user
gave (:func:`parse_memory_size`), or else the memory available now (:func:`available_memory_bytes`:
``MemAvailable`` of ``/proc/meminfo``, lowered to the room left under a cgroup memory limit (v1 or v2)
such as a SLURM job's ``--mem``; on a GPU the device's free memory). A step over the limit stops
with a one-line ``ValueError`` naming the step, the estimate, the limit and the setting to change,
instead of a traceback (``Unable to allocate ...``) or the kernel's out-of-memory kill.
Estimates count the dominant arrays only; they are meant to be within a factor of about two.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

#: Multipliers of the size suffixes accepted by :func:`parse_memory_size` (powers of 1024, as
#: SLURM's ``--mem``).
SIZE_SUFFIXES = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGTPkmgtp]?)(?:i?[Bb])?\s*$")


def parse_memory_size(text: str | int | float, *, name: str = "--max-memory") -> int:
    """Bytes from a size such as ``8G``, ``500M``, ``1.5T``, ``8GiB`` or a plain number of bytes.

    Suffixes K, M, G, T, P are powers of 1024 (``8G`` = 8 GiB), optionally followed by ``B`` or
    ``iB``; case does not matter.

    Raises
    ------
    ValueError
        Naming ``name``, what is accepted and what came, for anything else or a size ≤ 0.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _SIZE.match(str(text))
        if match is None:
            raise ValueError(f"{name} must be a size in bytes or with a suffix K, M, G or T (powers of 1024), "
                             f"such as 8G or 500M; got {text!r}")
        value = float(match.group(1)) * SIZE_SUFFIXES[match.group(2).upper()]
    if not value >= 1:
        raise ValueError(f"{name} must be at least 1 byte, got {text!r}")
    return int(value)


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` with a binary unit and three significant digits, e.g. ``'4.84 GiB'``."""
    value = float(n_bytes)
    if abs(value) < 1024:
        return f"{value:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if abs(value) < 1024:
            return f"{value:.3g} {unit}" if abs(value) < 1000 else f"{value:.0f} {unit}"
    return f"{value / 1024:.3g} PiB"


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (Linux), or None."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sysconf_available() -> int | None:
    """Free physical memory from ``os.sysconf`` (no page cache counted), or None where unknown."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


#: Memory limit, usage and reclaimable-cache names per cgroup version (v2 unified, v1 memory controller).
_CGROUP_FILES = {
    2: ("memory.max", "memory.current", "inactive_file"),
    1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
}
#: cgroup v1 reports "no limit" as a huge number (2^63 rounded down to pages).
_CGROUP_UNLIMITED = 2**60


def _cgroup_level_room(folder: Path, version: int) -> int | None:
    """Bytes left under one cgroup folder's memory limit (usage less inactive page cache), or None."""
    limit_name, usage_name, cache_name = _CGROUP_FILES[version]
    try:
        limit = (folder / limit_name).read_text().strip()
        if limit == "max" or int(limit) >= _CGROUP_UNLIMITED:
            return None
        used = int((folder / usage_name).read_text().strip())
        cache = 0
        for line in (folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == cache_name:
                cache = int(value)
        return max(int(limit) - used + cache, 0)
    except (OSError, ValueError):
        return None


def _cgroup_room(root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc/self/cgroup")) -> int | None:
    """Bytes left under the tightest cgroup memory limit of this process and its ancestors, or None."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return None
    rooms = []
    for line in lines:
        hierarchy, controllers, relative = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":
            version, base = 2, root
        elif "memory" in controllers.split(","):
            version, base = 1, root / "memory"
        else:
            continue
        folder = base / relative.strip("/")
        if not folder.is_dir():  # a container sees its own cgroup at the mount point
            folder = base
        while True:
            room = _cgroup_level_room(folder, version)
            if room is not None:
                rooms.append(room)
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return min(rooms) if rooms else None


def available_memory_bytes(xp=None) -> int | None:
    """Memory available to this process now, bytes (None where it cannot be told).

    Parameters
    ----------
    xp : module, optional
        Array module of the step: for CuPy, the free memory of the current device plus the
        blocks cached by CuPy's memory pool; otherwise host memory (``MemAvailable``, else free
        pages), lowered to the room left under a cgroup limit.
    """
    if xp is not None:
        from pipeline.backend import backend_name

        if backend_name(xp) == "cupy":
            free, _total = xp.cuda.Device().mem_info
            return int(free) + int(xp.get_default_memory_pool().free_bytes())
    host = _meminfo_available()
    if host is None:
        host = _sysconf_available()
    room = _cgroup_room()
    known = [v for v in (host, room) if v is not None]
    return min(known) if known else None


def check_memory(estimate_bytes: float, *, what: str, setting: str, limit_bytes: int | None = None, xp=None) -> None:
    """Raise ``ValueError`` when a step's memory estimate exceeds the limit.

    Parameters
    ----------
    estimate_bytes : float
        Estimated peak memory of the step's dominant arrays, bytes.
    what : str
        The step, as the user would name it (``"evaluate --grid 5000: a 5000³ map"``).
    setting : str
        What to change to make it fit (``"use a smaller --grid or set --max-memory"``).
    limit_bytes : int, optional
        The user's limit (``--max-memory``); default: :func:`available_memory_bytes`.
    xp : module, optional
        Array module of the step (device memory for CuPy).

    Raises
    ------
    ValueError
        One line: the step, the estimate, the limit and where it comes from, the setting.
    """
    if limit_bytes:
        limit, source = int(limit_bytes), "the memory limit of {} (--max-memory)"
    else:
        limit = available_memory_bytes(xp)
        source = "the {} of available memory"
        if limit is None:
            log.debug("%s: estimated %s; available memory unknown, not checked", what, format_bytes(estimate_bytes))
            return
    if estimate_bytes > limit:
        raise ValueError(f"{what} needs an estimated {format_bytes(estimate_bytes)} of memory, more than "
                         f"{source.format(format_bytes(limit))}; {setting}")
    log.debug("%s: estimated %s of memory, limit %s", what, format_bytes(estimate_bytes), format_bytes(limit))

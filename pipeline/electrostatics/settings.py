"""The potential stage's settings: one typed object, validated once, with the CLI options it maps to.

:class:`PotentialSettings` holds every setting of a potential build (accuracy, split, solvent,
periodicity, storage, self-check, device). Its defaults are the only defaults: the command
line (:func:`add_arguments`) and the workflow schema use the same values, and a test pins the
schema's defaults to these. Validation happens in ``__post_init__`` and names the setting, the
value received and what is expected. This module imports only the standard library, so the
command line can build its parser without loading the numerical code.

Solvent model: a uniform dielectric ε_r and, for an ionic strength I > 0, Debye–Hückel
screening with κ from ε_r, I and T (:func:`pipeline.units.debye_kappa_per_A`): the pair kernel
is e^{−κr}/(ε_r r). Periodicity: ``auto`` computes a periodic (Ewald, tin-foil) sum when the
structure record has a box and the free-space sum otherwise; ``on`` requires a box.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, fields

from pipeline.devices import DEVICES

#: Accepted range of the tolerance (relative accuracy); below 1e-12 the float64 arithmetic of
#: the build cannot deliver it and the grids grow without bound.
TOLERANCE_RANGE = (1e-12, 1e-2)
SPLITS = ("ewald", "gaussian-sum")
PERIODIC_MODES = ("auto", "on", "off")
#: Default limit on the stored long range: 1% of a 129³ float64 potential map, bytes.
DEFAULT_MAX_STORAGE_BYTES = int(0.01 * 8 * 129**3)
#: Default padding of the Chebyshev box around the atoms (free space), Å.
DEFAULT_PADDING = 3.0
#: Rebuilds at tighter internal tolerances after a self-check that missed the tolerance.
MAX_REPAIRS = 2
#: Widest extent of the atoms along any axis accepted without ``allow_large_span``, Å.
MAX_SPAN_A = 10_000.0


def check_tolerance(tolerance, *, name: str = "tolerance") -> float:
    """``tolerance`` as float; ``ValueError`` naming ``name`` unless it lies in :data:`TOLERANCE_RANGE`."""
    lo, hi = TOLERANCE_RANGE
    try:
        value = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [1e-12, 1e-2], got {tolerance!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"{name} must be in [1e-12, 1e-2] (relative accuracy), got {tolerance!r}")
    return value


@dataclass(frozen=True)
class PotentialSettings:
    """Settings of one potential build (see the module docstring).

    Attributes
    ----------
    tolerance : float
        Target relative accuracy ε in :data:`TOLERANCE_RANGE` (errors relative to max |Φ|).
    split : {"ewald", "gaussian-sum"}
    alpha : float or None
        Splitting parameter, 1/Å (None: cost model).
    cutoff : float or None
        Short-range cutoff, Å (None: from α and ε).
    degree : int or None
        Chebyshev nodes per axis (None: degree rule).
    padding : float
        Å around the atoms for the free-space Chebyshev box.
    ranks : tuple of 3 ints or None
        Fixed Tucker ranks (None: tail rule).
    hooi_sweeps : int
    max_storage_bytes : int
        Limit on the stored long range (0: none).
    self_check : int
        Atoms (and points) compared with an independent reference (0: off).
    accuracy_level : int
        Internal tightening of the first build (0: the default plan). A build whose self-check
        misses the tolerance is rebuilt at the next levels, up to :data:`MAX_REPAIRS` times.
    allow_exceeded : bool
        Write a potential that still misses the tolerance after the repairs (flagged by
        ``tolerance_exceeded`` in the file and the report) instead of failing.
    seed : int
        Seed of the self-check sample.
    device : {"cpu", "cuda", "auto"}
    dielectric : float
        Relative permittivity ε_r of the uniform medium (> 0).
    ionic_strength : float
        Ionic strength I, mol/L (≥ 0); I > 0 switches on Debye–Hückel screening.
    temperature : float
        Temperature T, K (> 0): Debye length and kT/e conversions.
    periodic : {"auto", "on", "off"}
    max_memory : str or None
        Refuse a build whose memory estimate exceeds this size (``8G``, ``500M``, bytes);
        None: the memory available now.
    allow_large_span : bool
        Accept atoms spanning more than :data:`MAX_SPAN_A` along an axis (free space).
    """

    tolerance: float = 1e-6
    split: str = "ewald"
    alpha: float | None = None
    cutoff: float | None = None
    degree: int | None = None
    padding: float = DEFAULT_PADDING
    ranks: tuple | None = None
    hooi_sweeps: int = 0
    max_storage_bytes: int = DEFAULT_MAX_STORAGE_BYTES
    self_check: int = 2000
    accuracy_level: int = 0
    allow_exceeded: bool = False
    seed: int = 0
    device: str = "cpu"
    dielectric: float = 1.0
    ionic_strength: float = 0.0
    temperature: float = 298.15
    periodic: str = "auto"
    max_memory: str | None = None
    allow_large_span: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "tolerance", check_tolerance(self.tolerance, name=_label("tolerance")))
        _choice("split", self.split, SPLITS)
        _choice("device", self.device, DEVICES)
        _choice("periodic", self.periodic, PERIODIC_MODES)
        for name in ("alpha", "cutoff"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(float(value)) and float(value) > 0):
                raise ValueError(f"{_label(name)} must be > 0, got {value!r}")
        if self.degree is not None and not 2 <= int(self.degree) <= 1024:
            raise ValueError(f"{_label('degree')} must be in [2, 1024] Chebyshev nodes per axis, got {self.degree!r}")
        if self.ranks is not None:
            ranks = tuple(int(r) for r in self.ranks)
            if len(ranks) != 3 or min(ranks) < 1:
                raise ValueError(f"{_label('ranks')} must be three integers ≥ 1, got {self.ranks!r}")
            object.__setattr__(self, "ranks", ranks)
        for name in ("hooi_sweeps", "max_storage_bytes", "self_check", "seed", "accuracy_level"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{_label(name)} must be ≥ 0, got {getattr(self, name)!r}")
        if not self.padding >= 0:
            raise ValueError(f"{_label('padding')} must be ≥ 0 Å, got {self.padding!r}")
        if not (math.isfinite(self.dielectric) and self.dielectric > 0):
            raise ValueError(f"{_label('dielectric')} (relative permittivity) must be > 0, got {self.dielectric!r}")
        if not (math.isfinite(self.ionic_strength) and self.ionic_strength >= 0):
            raise ValueError(f"{_label('ionic_strength')} must be ≥ 0 mol/L, got {self.ionic_strength!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"{_label('temperature')} must be > 0 K, got {self.temperature!r}")
        if self.max_memory is not None:
            from pipeline.resources import parse_memory_size

            parse_memory_size(self.max_memory)  # ValueError naming --max-memory and the accepted forms
        if self.ionic_strength > 0 and self.split != "ewald":
            raise ValueError(f"{_label('ionic_strength')} > 0 (Debye–Hückel screening) needs split 'ewald', "
                             f"got split {self.split!r}")

    @property
    def kappa(self) -> float:
        """Inverse Debye length κ, 1/Å (0 without salt)."""
        from pipeline.units import debye_kappa_per_A

        return debye_kappa_per_A(self.dielectric, self.ionic_strength, self.temperature)

    def wants_periodic(self, has_box: bool, *, source: str = "structure") -> bool:
        """Whether the build is periodic for a structure with (``has_box``) or without a box."""
        if self.periodic == "on" and not has_box:
            raise ValueError(f"{source}: {_label('periodic')} is 'on' but the structure record has no box "
                             "(periodic cell); use 'auto' or 'off', or ingest a file with a box")
        return self.periodic == "on" or (self.periodic == "auto" and has_box)

    def to_dict(self) -> dict:
        """Plain dict (JSON-safe) of every setting."""
        data = asdict(self)
        data["ranks"] = None if self.ranks is None else list(self.ranks)
        return data

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "PotentialSettings":
        """Settings from parsed :func:`add_arguments` options (options a parser lacks keep their defaults)."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        return cls(**values)


def _label(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{_label(name)} must be one of {', '.join(allowed)}, got {value!r}")


def add_arguments(parser: argparse.ArgumentParser, *, finish: bool = True) -> None:
    """Add the settings' options to ``parser`` with :class:`PotentialSettings` defaults.

    ``finish=False`` adds only the options that fix the build plan (what every scatter–gather
    job must share); ``finish=True`` also the compression, storage and self-check options.
    """
    d = PotentialSettings()
    plan = parser.add_argument_group("accuracy and parameters")
    plan.add_argument("--tolerance", type=float, default=d.tolerance,
                      help=f"target relative accuracy in [{TOLERANCE_RANGE[0]:g}, {TOLERANCE_RANGE[1]:g}] (default {d.tolerance:g})")
    plan.add_argument("--device", choices=DEVICES, default=d.device, help=f"array backend (default {d.device})")
    plan.add_argument("--split", choices=SPLITS, default=d.split, help=f"splitting of the kernel (default {d.split})")
    plan.add_argument("--alpha", type=float, metavar="PER_A", help="split parameter in 1/Å (default: cost model)")
    plan.add_argument("--cutoff", type=float, metavar="A", help="short-range cutoff in Å (default: from alpha and tolerance)")
    plan.add_argument("--degree", type=int, metavar="M", help="Chebyshev nodes per axis (default: degree rule)")
    plan.add_argument("--padding", type=float, default=d.padding, metavar="A",
                      help=f"Å added around the atoms for the free-space Chebyshev box (default {d.padding:g})")
    plan.add_argument("--accuracy-level", type=int, default=d.accuracy_level, metavar="K",
                      help="internal tightening of the first build; a build whose self-check misses the tolerance "
                           f"is rebuilt at the next levels, up to {MAX_REPAIRS} times (default {d.accuracy_level})")
    medium = parser.add_argument_group("solvent and boundary conditions")
    medium.add_argument("--dielectric", type=float, default=d.dielectric, metavar="EPS_R",
                        help=f"relative permittivity of the uniform medium (default {d.dielectric:g})")
    medium.add_argument("--ionic-strength", type=float, default=d.ionic_strength, metavar="MOL_PER_L",
                        help="ionic strength in mol/L; > 0 screens the kernel as Debye-Hückel e^(-kappa r)/(eps_r r) "
                             f"(default {d.ionic_strength:g})")
    medium.add_argument("--temperature", type=float, default=d.temperature, metavar="K",
                        help=f"temperature in K for the Debye length and kT/e (default {d.temperature:g})")
    medium.add_argument("--periodic", choices=PERIODIC_MODES, default=d.periodic,
                        help="periodic Ewald sum over the structure's box: auto = when the record has a box "
                             f"(default {d.periodic})")
    limits = parser.add_argument_group("resource limits")
    limits.add_argument("--max-memory", metavar="SIZE",
                        help="refuse a build estimated to need more memory, e.g. 8G or 500M (default: what is available)")
    limits.add_argument("--allow-large-span", action="store_true",
                        help=f"accept atoms spanning more than {MAX_SPAN_A:.0f} Å along an axis")
    if not finish:
        return
    out = parser.add_argument_group("compression and self-check")
    out.add_argument("--ranks", type=int, nargs=3, metavar=("R1", "R2", "R3"), help="fixed Tucker ranks")
    out.add_argument("--hooi-sweeps", type=int, default=d.hooi_sweeps, metavar="N",
                     help=f"HOOI refinement sweeps (default {d.hooi_sweeps})")
    out.add_argument("--max-storage", dest="max_storage_bytes", type=int, default=d.max_storage_bytes, metavar="BYTES",
                     help="limit on the stored long range; above it the representation is stored at a smaller "
                          f"alpha (default {d.max_storage_bytes}, 1%% of a 129^3 float64 map; 0: no limit)")
    out.add_argument("--self-check", type=int, default=d.self_check, metavar="N",
                     help=f"atoms and points compared with an independent reference (default {d.self_check}; 0: off)")
    out.add_argument("--allow-exceeded", action="store_true",
                     help="write a potential that misses the tolerance after the repairs (flagged in the file and the "
                          "report) instead of exiting with an error")
    out.add_argument("--seed", type=int, default=d.seed, metavar="N", help=f"seed of the self-check sample (default {d.seed})")

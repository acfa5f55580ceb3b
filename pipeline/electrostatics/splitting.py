"""Splitting of the Coulomb kernel 1/r into a smooth long range and a singular short range.

Two splits are offered, both written as 1/r = φ_L(r) + φ_S(r) with φ_S = 1/r − φ_L exactly,
so the only approximation is dropping φ_S beyond the cutoff:

``ewald``
    φ_L(r) = erf(αr)/r, φ_S(r) = erfc(αr)/r, φ_L(0) = 2α/√π. φ_L is the potential of a unit
    Gaussian charge of variance 1/(2α²) per axis.
``gaussian-sum``
    The sinc quadrature of 1/r = (2/√π)∫₀^∞ exp(−r² sinh²u) cosh u du on the scaled variable
    r/ℓ (ℓ = length scale of the box): 1/r ≈ Σ_k w_k exp(−t_k² r²), t_k = sinh(kh)/ℓ,
    w_0 = h/(√π ℓ), w_k = 2h cosh(kh)/(√π ℓ). The long range is the widest terms, t_k ≤ α.

Both long ranges are sums of Gaussians whose largest exponent is ``t_max`` (= α for Ewald);
:meth:`deconvolved_long` returns the kernel ψ with φ_L = W_s * W_s * ψ for a normalised
Gaussian W_s of variance s² per axis (needs s < 1/(2 t_max)), which the grid build uses.

Units: r in Å, kernels in 1/Å, α and t in 1/Å.

References
----------
Khoromskaia, Khoromskij, "Range-separated tensor format for many-particle modeling",
SIAM J. Sci. Comput. 40(2), 2018, doi:10.1137/16M1098930.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from pipeline.electrostatics.scalar_special import erfcinv
from pipeline.electrostatics.settings import check_tolerance  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

SPLITS = ("ewald", "gaussian-sum")


def _safe_r(r, xp):
    return xp.where(r > 0, r, 1.0)


def _special(xp):
    """Special functions of the backend ``xp``: ``scipy.special``, or ``cupyx.scipy.special`` (imported on first use)."""
    from pipeline.backend import special_functions

    return special_functions(xp)


@dataclass(frozen=True)
class EwaldSplit:
    """φ_L = erf(αr)/r, φ_S = erfc(αr)/r.

    Parameters
    ----------
    alpha : float
        Splitting parameter, 1/Å.
    """

    alpha: float
    name: str = field(default="ewald", init=False)

    @property
    def t_max(self) -> float:
        """Largest Gaussian exponent of the long range, 1/Å."""
        return float(self.alpha)

    def long(self, r):
        """φ_L(r) in 1/Å for r in Å (any shape); the limit 2α/√π at r = 0."""
        from pipeline.backend import namespace_of

        xp = namespace_of(r)
        rs = _safe_r(r, xp)
        return xp.where(r > 0, _special(xp).erf(self.alpha * rs) / rs, self.long_at_zero())

    def short(self, r):
        """φ_S(r) = erfc(αr)/r in 1/Å, for r > 0."""
        from pipeline.backend import namespace_of

        special = _special(namespace_of(r))  # scipy.special, or cupyx.scipy.special for CuPy arrays
        return special.erfc(self.alpha * r) / r

    def short_derivative(self, r):
        """dφ_S/dr in 1/Å², for r > 0."""
        from pipeline.backend import namespace_of

        xp = namespace_of(r)
        a = self.alpha
        return -_special(xp).erfc(a * r) / r**2 - (2 * a / math.sqrt(math.pi)) * xp.exp(-((a * r) ** 2)) / r

    def long_at_zero(self) -> float:
        """φ_L(0) = 2α/√π, the self term subtracted at an atom site."""
        return 2.0 * self.alpha / math.sqrt(math.pi)

    def deconvolved_long(self, r, s: float):
        """ψ with φ_L = W_s * W_s * ψ: erf(α'r)/r, 1/α'² = 1/α² − 4s²."""
        from pipeline.backend import namespace_of

        xp = namespace_of(r)
        inv = 1.0 / self.alpha**2 - 4.0 * s * s
        if inv <= 0:
            raise ValueError(f"spreading width s={s} too large for alpha={self.alpha} (need s < 1/(2 alpha))")
        a2 = 1.0 / math.sqrt(inv)
        rs = _safe_r(r, xp)
        return xp.where(r > 0, _special(xp).erf(a2 * rs) / rs, 2.0 * a2 / math.sqrt(math.pi))

    def cutoff_for(self, tolerance: float, length_scale: float | None = None) -> float:
        """Smallest r_c with erfc(α r_c) ≤ tolerance (r_c ≈ √ln(1/ε)/α), Å."""
        return float(erfcinv(tolerance) / self.alpha)

    def fourier_long(self, k2):
        """φ̂_L(k) = 4π e^{−k²/(4α²)}/k² for k² > 0 (1/Å² in, Å² out); 0 at k = 0 (tin-foil, neutral)."""
        k2 = np.asarray(k2, dtype=np.float64)
        safe = np.where(k2 > 0, k2, 1.0)
        return np.where(k2 > 0, 4.0 * math.pi * np.exp(-k2 / (4.0 * self.alpha**2)) / safe, 0.0)

    def with_alpha(self, alpha: float) -> "EwaldSplit":
        """The same kernel split at another α."""
        return EwaldSplit(alpha=float(alpha))

    def params(self) -> dict:
        return {"split": self.name, "alpha": float(self.alpha)}


@dataclass(frozen=True)
class ScreenedEwaldSplit:
    """Ewald-type split of the screened (Yukawa, Debye–Hückel) kernel e^{−κr}/r.

    φ_S(r) = [e^{−κr} erfc(αr − β) + e^{κr} erfc(αr + β)]/(2r) with β = κ/(2α), written as
    e^{−α²r² − β²}[erfcx(αr − β) + erfcx(αr + β)]/(2r) to stay finite for large r, and
    φ_L = e^{−κr}/r − φ_S, whose Fourier transform is 4π e^{−(k²+κ²)/(4α²)}/(k²+κ²) (smooth,
    so it goes through the same grid and Chebyshev–Tucker build as the Ewald long range);
    φ_L(0) = (2α/√π) e^{−β²} − κ erfc(β). κ = 0 gives :class:`EwaldSplit`.

    Parameters
    ----------
    alpha : float
        Splitting parameter, 1/Å.
    kappa : float
        Inverse Debye length κ, 1/Å (> 0).
    """

    alpha: float
    kappa: float
    name: str = field(default="ewald", init=False)

    @property
    def t_max(self) -> float:
        return float(self.alpha)

    def _beta(self) -> float:
        return self.kappa / (2.0 * self.alpha)

    def _pair_sum(self, r, xp):
        """[e^{−κr} erfc(αr − β) + e^{κr} erfc(αr + β)] for r ≥ 0."""
        a, b = self.alpha, self._beta()
        erfcx = _erfcx_of(xp)
        return xp.exp(-((a * r) ** 2) - b * b) * (erfcx(a * r - b) + erfcx(a * r + b))

    def short(self, r):
        from pipeline.backend import namespace_of

        xp = namespace_of(r)
        return 0.5 * self._pair_sum(r, xp) / r

    def short_derivative(self, r):
        from pipeline.backend import namespace_of

        xp = namespace_of(r)
        a, k, b = self.alpha, self.kappa, self._beta()
        erfc = _erfc_of(xp)
        gauss = xp.exp(-((a * r) ** 2) - b * b)
        ds = (-k * xp.exp(-k * r) * erfc(a * r - b) + k * xp.exp(k * r - (a * r + b) ** 2) * _erfcx_of(xp)(a * r + b)
              - (4.0 * a / math.sqrt(math.pi)) * gauss)
        return 0.5 * ds / r - 0.5 * self._pair_sum(r, xp) / r**2

    def long(self, r):
        from pipeline.backend import namespace_of

        xp = namespace_of(r)
        rs = _safe_r(r, xp)
        return xp.where(r > 0, xp.exp(-self.kappa * rs) / rs - self.short(rs), self.long_at_zero())

    def long_at_zero(self) -> float:
        b = self._beta()
        return float(2.0 * self.alpha / math.sqrt(math.pi) * math.exp(-b * b) - self.kappa * math.erfc(b))

    def deconvolved_long(self, r, s: float):
        """ψ with φ_L = W_s * W_s * ψ: e^{−κ²s²} times the screened long range at α', 1/α'² = 1/α² − 4s²."""
        inv = 1.0 / self.alpha**2 - 4.0 * s * s
        if inv <= 0:
            raise ValueError(f"spreading width s={s} too large for alpha={self.alpha} (need s < 1/(2 alpha))")
        return math.exp(-((self.kappa * s) ** 2)) * ScreenedEwaldSplit(1.0 / math.sqrt(inv), self.kappa).long(r)

    def cutoff_for(self, tolerance: float, length_scale: float | None = None) -> float:
        """Smallest r_c with r·φ_S(r) ≤ tolerance beyond it, Å (≤ the unscreened erfc cutoff)."""
        from scipy.optimize import brentq

        upper = float(erfcinv(tolerance) / self.alpha)
        g = lambda r: 0.5 * float(self._pair_sum(np.float64(r), np) - 2.0 * tolerance)  # noqa: E731
        if g(upper) > 0:
            return upper
        return float(brentq(g, 1e-6 / self.alpha, upper, xtol=1e-10 * upper)) if g(1e-6 / self.alpha) > 0 else 1e-6 / self.alpha

    def fourier_long(self, k2):
        """φ̂_L(k) = 4π e^{−(k²+κ²)/(4α²)}/(k²+κ²), finite at k = 0, Å²."""
        k2 = np.asarray(k2, dtype=np.float64) + self.kappa**2
        return 4.0 * math.pi * np.exp(-k2 / (4.0 * self.alpha**2)) / k2

    def with_alpha(self, alpha: float) -> "ScreenedEwaldSplit":
        return ScreenedEwaldSplit(alpha=float(alpha), kappa=self.kappa)

    def params(self) -> dict:
        return {"split": self.name, "alpha": float(self.alpha), "kappa_per_A": float(self.kappa)}


def _erfcx_of(xp):
    return _special(xp).erfcx


def _erfc_of(xp):
    return _special(xp).erfc


@dataclass(frozen=True)
class GaussianSumSplit:
    """Long range = widest terms of the sinc quadrature of 1/r (see module docstring).

    Parameters
    ----------
    step : float
        Quadrature step h (dimensionless).
    length_scale : float
        ℓ in Å; the quadrature is accurate for r/ℓ up to about 1.
    n_long : int
        Number of long-range terms k = 0 .. n_long−1.
    """

    step: float
    length_scale: float
    n_long: int
    name: str = field(default="gaussian-sum", init=False)

    @classmethod
    def for_alpha(cls, alpha: float, length_scale: float, tolerance: float) -> "GaussianSumSplit":
        """Terms with t_k ≤ α, step chosen so the full sum matches 1/r to tolerance/10 on [r_c, ℓ]."""
        r_c_guess = erfcinv(tolerance) / alpha
        rel = np.geomspace(max(r_c_guess / length_scale, 1e-3), 1.0, 400)
        step = 0.5
        for step in np.arange(0.5, 0.05, -0.01):
            k = np.arange(0, int(np.ceil(np.arcsinh(50.0 * length_scale / r_c_guess) / step)) + 60)
            t = np.sinh(k * step)
            w = np.where(k == 0, step, 2 * step * np.cosh(k * step)) / math.sqrt(math.pi)
            approx = (w[None, :] * np.exp(-np.outer(rel, t) ** 2)).sum(1)
            if np.max(np.abs(approx * rel - 1.0)) <= tolerance / 10:
                break
        n_long = int(np.sum(np.sinh(np.arange(0, 400) * step) / length_scale <= alpha))
        return cls(step=float(step), length_scale=float(length_scale), n_long=max(n_long, 1))

    def _terms(self):
        k = np.arange(self.n_long)
        t = np.sinh(k * self.step) / self.length_scale
        w = np.where(k == 0, self.step, 2 * self.step * np.cosh(k * self.step)) / (math.sqrt(math.pi) * self.length_scale)
        return t, w

    @property
    def t_max(self) -> float:
        t, _ = self._terms()
        return float(t.max())

    def long(self, r):
        from pipeline.backend import namespace_of

        xp = namespace_of(r)
        t, w = self._terms()
        out = xp.zeros_like(r, dtype=xp.float64)
        for tk, wk in zip(t, w):
            out = out + wk * xp.exp(-((tk * r) ** 2))
        return out

    def short(self, r):
        return 1.0 / r - self.long(r)

    def short_derivative(self, r):
        from pipeline.backend import namespace_of

        xp = namespace_of(r)
        t, w = self._terms()
        out = -1.0 / r**2
        for tk, wk in zip(t, w):
            out = out + wk * 2 * tk * tk * r * xp.exp(-((tk * r) ** 2))
        return out

    def long_at_zero(self) -> float:
        return float(self._terms()[1].sum())

    def deconvolved_long(self, r, s: float):
        """ψ = Σ w_k (t'_k/t_k)³ exp(−t'_k² r²), 1/t'_k² = 1/t_k² − 4s² (t_0 = 0 stays constant)."""
        from pipeline.backend import namespace_of

        xp = namespace_of(r)
        t, w = self._terms()
        out = xp.zeros_like(r, dtype=xp.float64)
        for tk, wk in zip(t, w):
            if tk == 0:
                out = out + wk
                continue
            inv = 1.0 / tk**2 - 4.0 * s * s
            if inv <= 0:
                raise ValueError(f"spreading width s={s} too large for t={tk}")
            t2 = 1.0 / math.sqrt(inv)
            out = out + wk * (t2 / tk) ** 3 * xp.exp(-((t2 * r) ** 2))
        return out

    def cutoff_for(self, tolerance: float, length_scale: float | None = None) -> float:
        """Smallest r_c with |φ_S(r)|·r ≤ tolerance for r in [r_c, ℓ], Å (numerical search)."""
        r = np.linspace(1e-3, self.length_scale, 20000)
        bad = np.abs(self.short(r)) * r > tolerance
        if not bad.any():
            return float(r[0])
        last = int(np.nonzero(bad)[0].max())
        return float(r[min(last + 1, r.size - 1)])

    def params(self) -> dict:
        return {
            "split": self.name,
            "alpha": self.t_max,
            "sinc_step": self.step,
            "sinc_length_scale_A": self.length_scale,
            "sinc_n_long": self.n_long,
        }


#: Annotation of any split of this module.
Split = EwaldSplit | ScreenedEwaldSplit | GaussianSumSplit


def make_split(name: str, alpha: float, *, tolerance: float, length_scale: float, kappa: float = 0.0):
    """Build the split called ``name`` (one of :data:`SPLITS`) for splitting parameter ``alpha`` (1/Å).

    ``kappa`` > 0 (1/Å) screens the kernel (:class:`ScreenedEwaldSplit`, Ewald split only).
    """
    if kappa > 0:
        if name != "ewald":
            raise ValueError(f"Debye–Hückel screening needs the split 'ewald', got {name!r}")
        return ScreenedEwaldSplit(alpha=float(alpha), kappa=float(kappa))
    if name == "ewald":
        return EwaldSplit(alpha=float(alpha))
    if name == "gaussian-sum":
        return GaussianSumSplit.for_alpha(float(alpha), float(length_scale), float(tolerance))
    raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")


def split_from_params(params: dict):
    """Rebuild a split from :meth:`params` output (as stored in a potential file)."""
    if params["split"] == "ewald":
        if float(params.get("kappa_per_A", 0.0)) > 0:
            return ScreenedEwaldSplit(alpha=float(params["alpha"]), kappa=float(params["kappa_per_A"]))
        return EwaldSplit(alpha=float(params["alpha"]))
    if params["split"] == "gaussian-sum":
        return GaussianSumSplit(
            step=float(params["sinc_step"]),
            length_scale=float(params["sinc_length_scale_A"]),
            n_long=int(params["sinc_n_long"]),
        )
    raise ValueError(f"unknown split {params['split']!r}; expected one of {', '.join(SPLITS)}")

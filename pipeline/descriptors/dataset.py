"""The descriptors file ``results/descriptors/{id}.nc`` as an xarray Dataset.

Dimensions: ``atom``; ``n`` (radial index); ``sh`` (flat SH index l² + l + m of the inputs);
``method`` (product methods); ``feature`` (output component of a product, padded to the
longest method); ``validation_atom``.

===============================  ===========================  ============  ===============================
variable                         dims                         units         meaning
===============================  ===========================  ============  ===============================
density                          (atom, n, sh)                e             A_i,nlm = Σ_j q_j R_n Y_lm
potential_expansion              (atom, sh)                   e/angstrom    Φ_i,lm on the sphere of radius ρ
product                          (atom, method, n, feature)   e^2/angstrom  tensor products, NaN padding (float32)
n_neighbours                     (atom,)                      1             neighbours within the cutoff
equivariance_error               (method,)                    1             relative max error, Q = −R
equivariance_error_density       ()                           1             same for the density
equivariance_error_potential     ()                           1             same for the potential expansion
potential_projection_error       ()                           1             change with 2× band limit
fourier_grid_difference          ()                           1             gaunt_fourier vs gaunt_grid
gaunt_cg_difference              ()                           1             max over Gaunt methods
gaunt_cg_difference_by_method    (method,)                    1             NaN for cg
time_total_s / time_product_s    () / (method,)               s             wall-clock times
===============================  ===========================  ============  ===============================

Coordinates label every component: ``sh_l``, ``sh_m``, ``sh_irrep`` ("0e", "1o", …) and, per
(method, feature), ``feature_l``, ``feature_m``, ``feature_parity`` (±1; 0 on padding),
``feature_irrep`` ("" on padding) and ``feature_paths`` (the (l1, l2) input pairs feeding the
block, "l1xl2" joined by "+"). Invariant features are those with ``feature_irrep == "0e"``.
Select a method with ``ds.sel({"method": "cg"})`` (``sel(method=...)`` is the keyword of
xarray's inexact matching, not the dimension).
Storage precision: ``product`` is stored as float32 (relative rounding ≤ 2⁻²⁴ ≈ 6e-8, below the
potential's own error for tolerances ≥ 1e-7; computed, validated and combined in float64), which
halves the file (at L = 2 and 4 radial functions the padded product is ~90 % of it).
``density`` and ``potential_expansion`` stay float64, so every product can be recomputed in
float64 from the file with :func:`pipeline.descriptors.products.descriptor_product`.
Global attributes: ``structure_id``, ``structure_file``, ``potential_file``, ``parameters``
(JSON), the validation rotation, per-step ``time_<step>_s`` and the provenance attributes.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from pipeline.descriptors.compute import Descriptors
from pipeline.descriptors.density import DENSITY_UNITS
from pipeline.descriptors.products import PRODUCT_UNITS
from pipeline.descriptors.projection import POTENTIAL_UNITS, sphere_grid_size
from pipeline.descriptors.radial import radial_centres
from pipeline.storage import config_hash, provenance_attrs

#: Storage dtype of the ``product`` variable (see the module docstring).
PRODUCT_STORAGE_DTYPE = np.float32

#: How the validation transforms the structure and the potential (stored as an attribute).
VALIDATION_NOTE = (
    "structure mapped x -> Q x with Q = -R (random rotation R followed by inversion, det Q = -1); "
    "density recomputed from the transformed coordinates; the Chebyshev-Tucker potential is tied to the "
    "original frame, so rotated-frame sphere points y are evaluated as Phi(Q^T y); features compared with "
    "p * D^l(R) applied to the original ones; errors are max|f' - D f| / max|D f| over the sampled atoms"
)


def _text(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=object)


def _sh_labels(lmax: int) -> dict[str, tuple]:
    ls = np.concatenate([np.full(2 * l + 1, l) for l in range(lmax + 1)]).astype(np.int64)
    ms = np.concatenate([np.arange(-l, l + 1) for l in range(lmax + 1)]).astype(np.int64)
    irreps = _text([f"{l}{'e' if l % 2 == 0 else 'o'}" for l in ls])
    return {
        "sh": ("sh", np.arange(ls.size, dtype=np.int64), {"units": "1", "long_name": "flat spherical-harmonic index l^2+l+m (e3nn order)"}),
        "sh_l": ("sh", ls, {"units": "1", "long_name": "degree l of the input component"}),
        "sh_m": ("sh", ms, {"units": "1", "long_name": "order m of the input component"}),
        "sh_irrep": ("sh", irreps, {"units": "1", "long_name": "irrep label of the input component (parity (-1)^l)"}),
    }


def _feature_labels(descriptors: Descriptors, n_feature: int) -> dict[str, tuple]:
    n_methods = len(descriptors.products)
    ls = np.full((n_methods, n_feature), -1, dtype=np.int64)
    ms = np.zeros((n_methods, n_feature), dtype=np.int64)
    parity = np.zeros((n_methods, n_feature), dtype=np.int64)
    irreps = np.full((n_methods, n_feature), "", dtype=object)
    paths = np.full((n_methods, n_feature), "", dtype=object)
    for k, result in enumerate(descriptors.products):
        for block in result.irreps.blocks:
            sl = block.slice
            ls[k, sl] = block.l
            ms[k, sl] = np.arange(-block.l, block.l + 1)
            parity[k, sl] = block.parity
            irreps[k, sl] = block.label
            paths[k, sl] = "+".join(f"{l1}x{l2}" for l1, l2 in block.paths)
    dims = ("method", "feature")
    return {
        "feature": ("feature", np.arange(n_feature, dtype=np.int64), {"units": "1", "long_name": "output component index of a tensor product"}),
        "feature_l": (dims, ls, {"units": "1", "long_name": "degree l of the output component (-1: padding)"}),
        "feature_m": (dims, ms, {"units": "1", "long_name": "order m of the output component"}),
        "feature_parity": (dims, parity, {"units": "1", "long_name": "parity of the output component (+1 even, -1 odd, 0 padding)"}),
        "feature_irrep": (dims, irreps, {"units": "1", "long_name": "irrep label of the output component ('' on padding)"}),
        "feature_paths": (dims, paths, {"units": "1", "long_name": "input degree pairs l1xl2 feeding the output block"}),
    }


def descriptors_to_dataset(descriptors: Descriptors, *, attrs: dict[str, Any] | None = None) -> xr.Dataset:
    """Build the Dataset of the module docstring.

    Parameters
    ----------
    descriptors : Descriptors
        Result of :func:`pipeline.descriptors.compute.compute_descriptors`.
    attrs : dict, optional
        Extra global attributes (``structure_id``, ``structure_file``, ``potential_file`` …).
    """
    p = descriptors.params
    n_atoms = descriptors.density.shape[0]
    methods = [r.method for r in descriptors.products]
    n_feature = max(r.irreps.dim for r in descriptors.products)
    product = np.empty((n_atoms, len(methods), p.n_radial, n_feature), dtype=PRODUCT_STORAGE_DTYPE)
    for k, result in enumerate(descriptors.products):  # one pass over the array: values, then NaN padding
        product[:, k, :, : result.irreps.dim] = result.values
        product[:, k, :, result.irreps.dim :] = np.nan
    centres, width = radial_centres(p.cutoff_A, p.n_radial)
    v = descriptors.validation
    nan = float("nan")
    eq_error = np.array([v.equivariance_error.get(m, nan) if v else nan for m in methods])
    gaunt_cg = np.array([v.gaunt_cg_difference.get(m, nan) if v else nan for m in methods])
    gaunt_cg_max = float(np.nanmax(gaunt_cg)) if np.isfinite(gaunt_cg).any() else nan
    one = {"units": "1"}
    data_vars = {
        "density": (("atom", "n", "sh"), descriptors.density, {
            "units": DENSITY_UNITS,
            "long_name": "charge-weighted neighbour density expansion A_i,nlm = sum_j q_j R_n(r_ij) Y_lm(r_ij/|r_ij|)"}),
        "potential_expansion": (("atom", "sh"), descriptors.potential_sh, {
            "units": POTENTIAL_UNITS,
            "long_name": "long-range potential on the sphere of radius rho around the atom, projected on Y_lm"}),
        "product": (("atom", "method", "n", "feature"), product, {
            "units": PRODUCT_UNITS, "long_name": "tensor product of density (per n) and potential expansion (NaN: padding)",
            "storage": "float32 rounding of float64 values; recompute in float64 from density and potential_expansion"}),
        "n_neighbours": (("atom",), descriptors.n_neighbours, {**one, "long_name": "neighbours within the cutoff"}),
        "equivariance_error": (("method",), eq_error, {
            **one, "long_name": "relative max equivariance error of the product features under rotation+inversion"}),
        "equivariance_error_density": ((), v.equivariance_error_density if v else nan, {
            **one, "long_name": "relative max equivariance error of the density expansion"}),
        "equivariance_error_potential": ((), v.equivariance_error_potential if v else nan, {
            **one, "long_name": "relative max equivariance error of the potential expansion (quadrature aliasing)"}),
        "potential_projection_error": ((), v.projection_error if v else nan, {
            **one, "long_name": "relative max change of the potential expansion with twice the band limit"}),
        "fourier_grid_difference": ((), v.fourier_grid_difference if v else nan, {
            **one, "long_name": "relative max difference between gaunt_fourier and gaunt_grid products"}),
        "gaunt_cg_difference": ((), gaunt_cg_max, {
            **one, "long_name": "relative max difference between Gaunt products and CG even paths times the Gaunt/CG factor"}),
        "gaunt_cg_difference_by_method": (("method",), gaunt_cg, {
            **one, "long_name": "gaunt_cg_difference per Gaunt method (NaN for cg)"}),
        "time_total_s": ((), descriptors.total_s, {"units": "s", "long_name": "wall-clock time of the descriptor stage (before writing)"}),
        "time_product_s": (("method",), np.array([r.seconds for r in descriptors.products]), {
            "units": "s", "long_name": "wall-clock time of the tensor product per method"}),
    }
    coords = {
        "atom": ("atom", np.arange(n_atoms, dtype=np.int64), {"units": "1", "long_name": "atom index"}),
        "n": ("n", np.arange(p.n_radial, dtype=np.int64), {"units": "1", "long_name": "radial basis index"}),
        "radial_centre": ("n", centres, {"units": "angstrom", "long_name": "centre mu_n of the Gaussian radial function"}),
        "method": ("method", _text(methods), {"units": "1", "long_name": "tensor-product method"}),
        **_sh_labels(p.lmax),
        **_feature_labels(descriptors, n_feature),
    }
    if v is not None:
        coords["validation_atom"] = ("validation_atom", v.sample.astype(np.int64), {
            "units": "1", "long_name": "atoms of the validation sample"})
    n_rings, n_azimuth = sphere_grid_size(p.lmax, p.effective_band_limit)
    params = p.to_dict()
    global_attrs: dict[str, Any] = dict(attrs or {})
    global_attrs.update(
        parameters=json.dumps(params, sort_keys=True),
        config_hash=config_hash(params),
        lmax=int(p.lmax), cutoff=float(p.cutoff_A), n_radial=int(p.n_radial), sphere_radius=float(p.sphere_radius_A),
        band_limit=int(p.effective_band_limit), quadrature_grid=[int(n_rings), int(n_azimuth)],
        radial_basis=f"R_n(r) = exp(-(r - n*{width:g})^2 / (2*{width:g}^2)) * 0.5*(1 + cos(pi r / {p.cutoff_A:g})), r < cutoff (angstrom)",
        sh_convention="e3nn real spherical harmonics, polar axis +y, no Condon-Shortley phase, index l^2+l+m, integral normalisation",
        potential_part="long range of the range-separated potential (Chebyshev-Tucker), including every atom's self term",
        n_atoms=int(n_atoms), n_pairs=int(descriptors.n_pairs), backend=descriptors.backend, dtype="float64",
        product_storage_dtype=np.dtype(PRODUCT_STORAGE_DTYPE).name,
        **{f"time_{step}_s": float(s) for step, s in descriptors.timings_s.items()},
    )
    if v is not None:
        global_attrs.update(
            validation=VALIDATION_NOTE, validation_seed=int(p.seed), validation_n_atoms=int(v.sample.size),
            validation_rotation=[float(x) for x in v.rotation.reshape(-1)],
        )
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs = provenance_attrs(**global_attrs)
    return ds

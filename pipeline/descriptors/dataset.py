"""The descriptors file ``results/descriptors/{id}.nc``: its variables, and as an xarray Dataset.

Dimensions: ``atom``; ``n`` (radial index); ``sh`` (flat SH index l² + l + m of the inputs);
``method`` (product methods); ``{key}_feature`` (output components of the product of one
method, ``key`` = :func:`method_key`: ``cg``, ``gaunt_fourier``, ``gaunt_grid``,
``gaunt_grid_vector_gaunt``); ``validation_atom``.

===============================  ===========================  ============  ===============================
variable                         dims                         units         meaning
===============================  ===========================  ============  ===============================
density                          (atom, n, sh)                e             A_i,nlm = Σ_j q_j R_n Y_lm
potential_expansion              (atom, sh)                   e/angstrom    Φ_i,lm on the sphere of radius ρ
product_{key}                    (atom, n, {key}_feature)     e^2/angstrom  tensor product of one method (float32)
n_neighbours                     (atom,)                      1             neighbours within the cutoff
equivariance_error               (method,)                    1             relative max error, Q = −R
equivariance_error_density       ()                           1             same for the density
equivariance_error_potential     ()                           1             same for the potential expansion
potential_projection_error       ()                           1             change with 2× band limit
fourier_grid_difference          ()                           1             gaunt_fourier vs gaunt_grid (sample)
gaunt_cg_difference              ()                           1             max over Gaunt methods (sample)
gaunt_cg_difference_by_method    (method,)                    1             NaN for cg
stored_product_error             (method,)                    1             stored vs float64 (sample)
time_total_s / time_product_s    () / (method,)               s             wall-clock times
===============================  ===========================  ============  ===============================

Coordinates label every component: ``sh_l``, ``sh_m``, ``sh_irrep`` ("0e", "1o", …) and, per
method, ``{key}_l``, ``{key}_m``, ``{key}_parity`` (±1), ``{key}_irrep`` and ``{key}_paths``
(the (l1, l2) input pairs feeding the block, "l1xl2" joined by "+") along ``{key}_feature``.
Each ``product_{key}`` carries its method's name in the attribute ``method``. Invariant
features are those with ``{key}_irrep == "0e"``, e.g.
``ds["product_cg"].where(ds["cg_irrep"] == "0e", drop=True)``. Each method has its own
feature axis, so no padding is stored (a common padded axis was 57 % NaN at L = 2).
Storage precision: the products are stored as float32 (relative rounding ≤ 2⁻²⁴ ≈ 6e-8, below
the potential's own error for tolerances ≥ 1e-7; computed, validated and combined in float64),
which halves them (at L = 2 and 4 radial functions they are ~80 % of the file). ``density``
and ``potential_expansion`` stay float64, so every product can be recomputed in float64 from
the file with :func:`pipeline.descriptors.products.descriptor_product`.
Global attributes: ``structure_id``, ``structure_file``, ``potential_file``, ``parameters``
(JSON), the validation rotation, per-step ``time_<step>_s`` and the provenance attributes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.descriptors.compute import Descriptors
from pipeline.descriptors.density import DENSITY_UNITS
from pipeline.descriptors.products import PRODUCT_UNITS
from pipeline.descriptors.projection import POTENTIAL_UNITS, sphere_grid_size
from pipeline.descriptors.radial import radial_centres
from pipeline.storage import Variable, config_hash, provenance_attrs

if TYPE_CHECKING:
    import xarray as xr

#: Storage dtype of the ``product_{key}`` variables (see the module docstring).
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


def _sh_labels(lmax: int) -> dict[str, Variable]:
    """Coordinates of the input SH axis: degree, order and irrep of every flat index."""
    ls = np.concatenate([np.full(2 * l + 1, l) for l in range(lmax + 1)]).astype(np.int64)
    ms = np.concatenate([np.arange(-l, l + 1) for l in range(lmax + 1)]).astype(np.int64)
    irreps = _text([f"{l}{'e' if l % 2 == 0 else 'o'}" for l in ls])
    return {
        "sh_l": (("sh",), ls, {"units": "1", "long_name": "degree l of the input component"}),
        "sh_m": (("sh",), ms, {"units": "1", "long_name": "order m of the input component"}),
        "sh_irrep": (("sh",), irreps, {"units": "1", "long_name": "irrep label of the input component (parity (-1)^l)"}),
    }


def method_key(method: str) -> str:
    """The name of a product method in variable and dimension names (``+`` → ``_``)."""
    return method.replace("+", "_")


def _feature_labels(result) -> dict[str, Variable]:
    """Coordinates of one method's feature axis: degree, order, parity, irrep and input paths per component."""
    key = method_key(result.method)
    dim = (f"{key}_feature",)
    n_feature = result.irreps.dim
    ls = np.zeros(n_feature, dtype=np.int64)
    ms = np.zeros(n_feature, dtype=np.int64)
    parity = np.zeros(n_feature, dtype=np.int64)
    irreps = np.full(n_feature, "", dtype=object)
    paths = np.full(n_feature, "", dtype=object)
    for block in result.irreps.blocks:
        sl = block.slice
        ls[sl] = block.l
        ms[sl] = np.arange(-block.l, block.l + 1)
        parity[sl] = block.parity
        irreps[sl] = block.label
        paths[sl] = "+".join(f"{l1}x{l2}" for l1, l2 in block.paths)
    one = {"units": "1"}
    return {
        f"{key}_l": (dim, ls, {**one, "long_name": f"degree l of the {result.method} output component"}),
        f"{key}_m": (dim, ms, {**one, "long_name": f"order m of the {result.method} output component"}),
        f"{key}_parity": (dim, parity, {**one, "long_name": f"parity of the {result.method} output component (+1 even, -1 odd)"}),
        f"{key}_irrep": (dim, irreps, {**one, "long_name": f"irrep label of the {result.method} output component"}),
        f"{key}_paths": (dim, paths, {**one, "long_name": f"input degree pairs l1xl2 feeding the {result.method} output block"}),
    }


def descriptors_to_dataset(descriptors: Descriptors, *, attrs: dict[str, Any] | None = None) -> xr.Dataset:
    """The Dataset of the module docstring (the variables of :func:`descriptors_file_variables`)."""
    import xarray as xr

    variables, coordinates, global_attrs = descriptors_file_variables(descriptors, attrs=attrs)
    data = {name: v for name, v in variables.items() if name not in coordinates}
    return xr.Dataset(data, coords={name: variables[name] for name in coordinates}, attrs=global_attrs)


def descriptors_file_variables(descriptors: Descriptors, *,
                               attrs: dict[str, Any] | None = None) -> tuple[dict[str, Variable], list[str], dict]:
    """The descriptors file's variables (name → (dims, NumPy values, attrs)), coordinate names and global attributes.

    Parameters
    ----------
    descriptors : Descriptors
        Result of :func:`pipeline.descriptors.compute.compute_descriptors` (host arrays).
    attrs : dict, optional
        Extra global attributes (``structure_id``, ``structure_file``, ``potential_file`` …).

    Returns
    -------
    variables : dict
        Data variables and coordinates (index coordinates are named like their dimension).
    coordinates : list of str
        The non-index coordinates among ``variables`` (component labels, radial centres).
    attrs : dict
        Global attributes, provenance included.
    """
    p = descriptors.params
    n_atoms = descriptors.density.shape[0]
    methods = [r.method for r in descriptors.products]
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
        **{f"product_{method_key(r.method)}": (("atom", "n", f"{method_key(r.method)}_feature"),
                                                r.values.astype(PRODUCT_STORAGE_DTYPE, copy=False), {
            "units": PRODUCT_UNITS, "method": r.method,
            "long_name": f"{r.method} tensor product of the density (per n) and the potential expansion",
            "storage": "float32 rounding of float64 values; recompute in float64 from density and potential_expansion"})
           for r in descriptors.products},
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
            **one, "long_name": "relative max difference between gaunt_fourier and gaunt_grid products over the validation sample"}),
        "gaunt_cg_difference": ((), gaunt_cg_max, {
            **one, "long_name": "relative max difference between Gaunt products and CG even paths times the Gaunt/CG factor over the validation sample"}),
        "stored_product_error": (("method",), np.array([v.product_error.get(m, nan) if v else nan for m in methods]), {
            **one, "long_name": "relative max difference of the stored products from their float64 recomputation "
                                "over the validation sample"}),
        "gaunt_cg_difference_by_method": (("method",), gaunt_cg, {
            **one, "long_name": "gaunt_cg_difference per Gaunt method (NaN for cg)"}),
        "time_total_s": ((), descriptors.total_s, {"units": "s", "long_name": "wall-clock time of the descriptor stage (before writing)"}),
        "time_product_s": (("method",), np.array([r.seconds for r in descriptors.products]), {
            "units": "s", "long_name": "wall-clock time of the tensor product per method"}),
    }
    labels = {
        "radial_centre": (("n",), centres, {"units": "angstrom", "long_name": "centre mu_n of the Gaussian radial function"}),
        **_sh_labels(p.lmax),
    }
    for result in descriptors.products:
        labels.update(_feature_labels(result))
    indexes = {
        "atom": (("atom",), np.arange(n_atoms, dtype=np.int64), {"units": "1", "long_name": "atom index"}),
        "n": (("n",), np.arange(p.n_radial, dtype=np.int64), {"units": "1", "long_name": "radial basis index"}),
        "method": (("method",), _text(methods), {"units": "1", "long_name": "tensor-product method"}),
        "sh": (("sh",), np.arange((p.lmax + 1) ** 2, dtype=np.int64),
               {"units": "1", "long_name": "flat spherical-harmonic index l^2+l+m (e3nn order)"}),
    }
    for result in descriptors.products:
        key = method_key(result.method)
        indexes[f"{key}_feature"] = ((f"{key}_feature",), np.arange(result.irreps.dim, dtype=np.int64),
                                     {"units": "1", "long_name": f"output component index of the {result.method} product"})
    if v is not None:
        indexes["validation_atom"] = (("validation_atom",), v.sample.astype(np.int64), {
            "units": "1", "long_name": "atoms of the validation sample"})
    n_rings, n_azimuth = sphere_grid_size(p.lmax, descriptors.band_limit)
    params = p.to_dict()
    global_attrs: dict[str, Any] = dict(attrs or {})
    global_attrs.update(
        parameters=json.dumps(params, sort_keys=True),
        config_hash=config_hash(params),
        lmax=int(p.lmax), cutoff=float(p.cutoff_A), n_radial=int(p.n_radial), sphere_radius=float(p.sphere_radius_A),
        band_limit=int(descriptors.band_limit), quadrature_grid=[int(n_rings), int(n_azimuth)],
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
    return {**indexes, **labels, **data_vars}, list(labels), provenance_attrs(**global_attrs)

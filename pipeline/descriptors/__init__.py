"""Per-atom equivariant electrostatic descriptors.

For every atom i, up to degree L (e3nn real spherical harmonics, integral normalisation):

* :mod:`.density_cells`: charge-weighted neighbour density ``A_i,nlm = Σ_j q_j R_n(r_ij) Y_lm(r̂_ij)``
  with the radial basis and smooth cutoff of :mod:`.radial`, by a compiled kernel over a cell
  list (:mod:`.density` computes the same from the KD-tree pairs of :mod:`.neighbours`, and
  :mod:`.density_array` with array code on NumPy or CuPy, the device route);
* :mod:`.projection`: the long-range potential on a sphere of radius ρ, ``Φ_i,lm``, by exact
  Gauss–Legendre × equispaced quadrature;
* :mod:`.products`: their tensor products by CG, Gaunt (Fourier and S2 grid) and Gaunt + vector
  Gaunt;
* :mod:`.validation`: equivariance under rotation + inversion and agreement between methods;
* :mod:`.compute` ties the steps together and :mod:`.dataset` writes the netCDF layout.
"""

from importlib import import_module

#: Public names and the submodule that defines each (imported on first use, so that a device
#: check can import :mod:`.projection` or :mod:`.density_array` without the CPU-only modules).
_EXPORTS = {
    "DescriptorParameters": "compute",
    "Descriptors": "compute",
    "compute_descriptors": "compute",
    "descriptors_to_dataset": "dataset",
    "PRODUCT_METHODS": "products",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

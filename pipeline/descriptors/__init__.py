"""Per-atom equivariant electrostatic descriptors.

For every atom i, up to degree L (e3nn real spherical harmonics, integral normalisation):

* :mod:`.density_cells`: charge-weighted neighbour density ``A_i,nlm = Σ_j q_j R_n(r_ij) Y_lm(r̂_ij)``
  with the radial basis and smooth cutoff of :mod:`.radial`, by a compiled kernel over a cell
  list (:mod:`.density` computes the same from the KD-tree pairs of :mod:`.neighbours`);
* :mod:`.projection`: the long-range potential on a sphere of radius ρ, ``Φ_i,lm``, by exact
  Gauss–Legendre × equispaced quadrature;
* :mod:`.products`: their tensor products by CG, Gaunt (Fourier and S2 grid) and Gaunt + vector
  Gaunt;
* :mod:`.validation`: equivariance under rotation + inversion and agreement between methods;
* :mod:`.compute` ties the steps together and :mod:`.dataset` writes the netCDF layout.
"""

from pipeline.descriptors.compute import DescriptorParameters, Descriptors, compute_descriptors
from pipeline.descriptors.dataset import descriptors_to_dataset
from pipeline.descriptors.products import PRODUCT_METHODS

__all__ = ["PRODUCT_METHODS", "DescriptorParameters", "Descriptors", "compute_descriptors", "descriptors_to_dataset"]

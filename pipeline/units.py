"""Physical constants and unit conversions.

Internal units are Å for length, e (elementary charge) for charge and e/Å for the
electrostatic potential (the Gaussian-units potential Σ q_j / r_ij). Conversions happen
only on output. Constants are CODATA 2018 values.
"""

from __future__ import annotations

#: Coulomb constant e²/(4πε₀·Å) in kcal/mol: multiply e/Å by this to get kcal/mol/e.
COULOMB_KCAL_PER_MOL_A_PER_E2 = 332.0637132991921
#: e/(4πε₀·Å) in volts: multiply e/Å by this to get V.
COULOMB_VOLT_A_PER_E = 14.399645478425668
#: Boltzmann constant in kcal/mol/K.
BOLTZMANN_KCAL_PER_MOL_K = 0.0019872042586408316
#: Temperature used for kT/e potential maps, in K.
ROOM_TEMPERATURE_K = 298.15

#: Factors that turn a potential in e/Å into the named unit.
POTENTIAL_UNIT_FACTORS: dict[str, float] = {
    "e/A": 1.0,
    "kcal/mol/e": COULOMB_KCAL_PER_MOL_A_PER_E2,
    "V": COULOMB_VOLT_A_PER_E,
    "kT/e": COULOMB_KCAL_PER_MOL_A_PER_E2 / (BOLTZMANN_KCAL_PER_MOL_K * ROOM_TEMPERATURE_K),
}


def convert_potential(value_e_per_A, unit: str, *, temperature_K: float = ROOM_TEMPERATURE_K):
    """Convert a potential from e/Å to ``unit`` (one of :data:`POTENTIAL_UNIT_FACTORS`).

    ``kT/e`` is taken at ``temperature_K`` (default :data:`ROOM_TEMPERATURE_K`).
    """
    if unit == "kT/e":
        return value_e_per_A * kT_per_e_factor(temperature_K)
    try:
        factor = POTENTIAL_UNIT_FACTORS[unit]
    except KeyError:
        raise ValueError(
            f"unknown potential unit {unit!r}; expected one of {', '.join(POTENTIAL_UNIT_FACTORS)}"
        ) from None
    return value_e_per_A * factor

#: CODATA 2018 exact SI constants used for the Debye screening length.
ELEMENTARY_CHARGE_C = 1.602176634e-19
AVOGADRO_PER_MOL = 6.02214076e23
BOLTZMANN_J_PER_K = 1.380649e-23
#: Vacuum permittivity ε₀ in F/m (CODATA 2018).
VACUUM_PERMITTIVITY_F_PER_M = 8.8541878128e-12


def debye_kappa_per_A(dielectric: float, ionic_strength_M: float, temperature_K: float) -> float:
    """Inverse Debye length κ in 1/Å of a 1:1-equivalent electrolyte.

    κ² = 2 N_A e² I / (ε_r ε₀ k_B T) with the ionic strength I in mol/L converted to mol/m³
    (× 1000); CODATA 2018 constants. 0 for I = 0. At I = 0.15 M, ε_r = 78.5, T = 298.15 K,
    κ⁻¹ = 7.8546 Å.
    """
    if ionic_strength_M == 0:
        return 0.0
    kappa2_per_m2 = (2.0 * AVOGADRO_PER_MOL * ELEMENTARY_CHARGE_C**2 * ionic_strength_M * 1000.0
                     / (dielectric * VACUUM_PERMITTIVITY_F_PER_M * BOLTZMANN_J_PER_K * temperature_K))
    return float(kappa2_per_m2**0.5 * 1e-10)


def kT_per_e_factor(temperature_K: float) -> float:
    """Factor that turns a potential in e/Å into kT/e at ``temperature_K``."""
    return COULOMB_KCAL_PER_MOL_A_PER_E2 / (BOLTZMANN_KCAL_PER_MOL_K * temperature_K)

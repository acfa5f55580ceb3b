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


def convert_potential(value_e_per_A, unit: str):
    """Convert a potential from e/Å to ``unit`` (one of :data:`POTENTIAL_UNIT_FACTORS`)."""
    try:
        factor = POTENTIAL_UNIT_FACTORS[unit]
    except KeyError:
        raise ValueError(
            f"unknown potential unit {unit!r}; expected one of {', '.join(POTENTIAL_UNIT_FACTORS)}"
        ) from None
    return value_e_per_A * factor

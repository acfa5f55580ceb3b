"""Description of a tensor product's output: irreducible blocks, their parity and paths.

Parity convention of the inputs: a signal with ``parity = p`` has l-block parity p·(−1)^l
(p = +1 is a spherical-harmonic signal 0e + 1o + 2e + …, p = −1 is 0o + 1e + 2o + …). The
path (l1, l2, l3) of a product of signals with parities (p1, p2) then has parity
p1·p2·(−1)^(l1+l2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    """One output irrep copy: degree ``l``, parity ±1, flat slice ``start:stop`` of the last
    axis, and the (l1, l2) input pairs whose paths feed it."""

    l: int
    parity: int
    start: int
    paths: tuple[tuple[int, int], ...]

    @property
    def stop(self) -> int:
        return self.start + 2 * self.l + 1

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    @property
    def label(self) -> str:
        return f"{self.l}{'e' if self.parity > 0 else 'o'}"


@dataclass(frozen=True)
class ProductIrreps:
    """Output irreps of a tensor product, in the order of the output's last axis."""

    blocks: tuple[Block, ...]

    @property
    def dim(self) -> int:
        return self.blocks[-1].stop if self.blocks else 0

    @property
    def paths(self) -> list[tuple[int, int, int, int]]:
        """Every computed path as (l1, l2, l3, parity)."""
        return [(l1, l2, b.l, b.parity) for b in self.blocks for (l1, l2) in b.paths]

    def __str__(self) -> str:
        return "+".join(f"1x{b.label}" for b in self.blocks)


def path_parity(l1: int, l2: int, parity: tuple[int, int]) -> int:
    """Parity p1·p2·(−1)^(l1+l2) of the path output."""
    return parity[0] * parity[1] * (-1) ** (l1 + l2)

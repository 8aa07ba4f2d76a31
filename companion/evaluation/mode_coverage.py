"""How many modes of a known Gaussian mixture a generator covers, and how cleanly.

The protocol of VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al.,
2018) for the 2-D ring and grid: draw samples from the generator, register
each to its nearest centre, and call it *high quality* when it lies within
3σ of that centre (Euclidean distance; an isotropic 2-D Gaussian puts
1 - e^{-4.5} ≈ 98.9 % of its mass there). A mode counts as *covered* when
at least ``min_count`` high-quality samples are registered to it. The default
``min_count=20`` is PacGAN's threshold for 2,500 samples on the 25-mode grid
(100 expected per mode); scale it with the number of samples per mode
(e.g. ``min_count=1`` for "at least one sample", the loosest reading).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from companion._validation import check_array, check_positive_int


@dataclass(frozen=True)
class ModeCoverage:
    """Result of :func:`mode_coverage`.

    modes : number of covered modes.
    high_quality : share of samples within 3σ of their nearest centre, in [0, 1].
    counts : high-quality samples registered to each centre, int64 (n_centers,).
    """

    modes: int
    high_quality: float
    counts: torch.Tensor


def mode_coverage(
    samples, centers, sigma: float, *, min_count: int = 20, radius: float = 3.0
) -> ModeCoverage:
    """Modes covered and share of high-quality samples (within ``radius``·σ of a centre).

    samples : (n, d) array or tensor; centers : (k, d); sigma : the std of each mode.
    """
    X, _ = check_array(samples, name="samples", dtype=torch.float64)
    C, _ = check_array(centers, name="centers", dtype=torch.float64)
    if C.shape[1] != X.shape[1]:
        raise ValueError(
            f"samples have {X.shape[1]} columns but centers have {C.shape[1]}; "
            "give centres in the same space as the samples."
        )
    if not (isinstance(sigma, (int, float)) and sigma > 0):
        raise ValueError(
            f"sigma={sigma!r} must be a positive number, e.g. sigma=0.01 for the ring."
        )
    if not radius > 0:
        raise ValueError(
            f"radius={radius} must be positive; 3 standard deviations is the convention."
        )
    min_count = check_positive_int(min_count, name="min_count")
    C = C.to(X.device)
    distance, nearest = torch.cdist(X, C).min(dim=1)  # (n,), (n,)
    good = distance <= radius * sigma
    counts = torch.bincount(nearest[good], minlength=C.shape[0])
    return ModeCoverage(
        modes=int((counts >= min_count).sum()),
        high_quality=float(good.double().mean()),
        counts=counts.cpu(),
    )

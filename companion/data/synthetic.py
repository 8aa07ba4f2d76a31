"""Small data sets that need nothing on disk: manifolds and mixtures in 2-D and 3-D.

Every generator takes ``n_samples``, a noise level and ``seed`` and returns
float32 tensors ``(X, t)``: the points, shape (n_samples, dim), and what
generated each one (the position along a manifold, or the mixture component).
"""

from __future__ import annotations

import math

import torch

from companion._validation import check_positive_int
from companion.runtime import resolve_seed


def _generator(seed: int | None) -> torch.Generator:
    return torch.Generator().manual_seed(resolve_seed(seed))


def _check_n(n_samples: int) -> None:
    check_positive_int(n_samples, name="n_samples")


def make_swiss_roll(
    n_samples: int = 1000, *, noise: float = 0.0, seed: int | None = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on a rolled-up rectangle in 3-D.

    Returns ``X`` (n, 3) and ``t`` (n,), the angle along the roll in
    [1.5π, 4.5π], which is the coordinate that unrolls it.
    """
    _check_n(n_samples)
    g = _generator(seed)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n_samples, generator=g))
    height = 21 * torch.rand(n_samples, generator=g)
    X = torch.stack([t * torch.cos(t), height, t * torch.sin(t)], dim=1)
    X = X + noise * torch.randn(n_samples, 3, generator=g)
    return X.float(), t.float()


def make_s_curve(
    n_samples: int = 1000, *, noise: float = 0.0, seed: int | None = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on an S-shaped sheet in 3-D; ``t`` in [-1.5π, 1.5π] runs along the S."""
    _check_n(n_samples)
    g = _generator(seed)
    t = 3 * math.pi * (torch.rand(n_samples, generator=g) - 0.5)
    height = 2 * torch.rand(n_samples, generator=g)
    X = torch.stack([torch.sin(t), height, torch.sign(t) * (torch.cos(t) - 1)], dim=1)
    X = X + noise * torch.randn(n_samples, 3, generator=g)
    return X.float(), t.float()


def make_noisy_circle(
    n_samples: int = 500, *, radius: float = 1.0, noise: float = 0.05, seed: int | None = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A circle of ``radius`` in 2-D with Gaussian noise; ``t`` is the angle in [0, 2π)."""
    _check_n(n_samples)
    g = _generator(seed)
    t = 2 * math.pi * torch.rand(n_samples, generator=g)
    X = radius * torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    X = X + noise * torch.randn(n_samples, 2, generator=g)
    return X.float(), t.float()


def make_noisy_sphere(
    n_samples: int = 1000,
    *,
    dim: int = 3,
    radius: float = 1.0,
    noise: float = 0.05,
    seed: int | None = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform points on the sphere S^(dim-1) in R^dim plus Gaussian noise.

    ``t`` is each point's first coordinate before the noise (a height to colour by).
    """
    _check_n(n_samples)
    if dim < 2:
        raise ValueError(f"dim={dim} must be at least 2 (dim=2 gives a circle).")
    g = _generator(seed)
    directions = torch.randn(n_samples, dim, generator=g)
    clean = radius * directions / directions.norm(dim=1, keepdim=True)
    X = clean + noise * torch.randn(n_samples, dim, generator=g)
    return X.float(), clean[:, 0].float()


def make_two_moons(
    n_samples: int = 500, *, noise: float = 0.1, seed: int | None = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved half circles; ``t`` is the moon (0 or 1, int64)."""
    _check_n(n_samples)
    g = _generator(seed)
    n_upper = n_samples // 2 + n_samples % 2
    labels = torch.cat([torch.zeros(n_upper), torch.ones(n_samples - n_upper)]).long()
    angle = math.pi * torch.rand(n_samples, generator=g)
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.stack([1 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
    X = torch.where(labels[:, None] == 0, upper, lower)
    X = X + noise * torch.randn(n_samples, 2, generator=g)
    return X.float(), labels


def ring_centers(n_modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    """Centres of the ring mixture: ``n_modes`` points evenly spaced on a circle, (n_modes, 2)."""
    angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    return (radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)).float()


def grid_centers(values: tuple[float, ...] = (-4, -2, 0, 2, 4)) -> torch.Tensor:
    """Centres of the grid mixture: every pair of ``values``, (len(values)**2, 2)."""
    axis = torch.tensor(values, dtype=torch.float32)
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def _sample_mixture(centers: torch.Tensor, sigma: float, n_samples: int, seed) -> tuple:
    _check_n(n_samples)
    if sigma < 0:
        raise ValueError(f"sigma={sigma} must be non-negative.")
    g = _generator(seed)
    modes = torch.randint(len(centers), (n_samples,), generator=g)
    X = centers[modes] + sigma * torch.randn(n_samples, centers.shape[1], generator=g)
    return X.float(), modes


def make_ring(
    n_samples: int = 1000,
    *,
    n_modes: int = 8,
    radius: float = 1.0,
    sigma: float = 0.01,
    seed: int | None = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The GAN benchmark ring: equal-weight Gaussians of std ``sigma`` on a circle.

    The defaults (8 modes, unit circle, σ = 0.01) are those of the PacGAN paper.
    ``t`` is the mode of each sample (int64).
    """
    return _sample_mixture(ring_centers(n_modes, radius), sigma, n_samples, seed)


def make_grid(
    n_samples: int = 1000,
    *,
    values: tuple[float, ...] = (-4, -2, 0, 2, 4),
    sigma: float = 0.05,
    seed: int | None = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The GAN benchmark grid: 25 Gaussians of std 0.05 centred on {-4,-2,0,2,4}²."""
    return _sample_mixture(grid_centers(values), sigma, n_samples, seed)


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8×8 digits: ``X`` float32 (1797, 64) in [0, 16], ``y`` int64.

    Needs scikit-learn (in the ``test`` and ``book`` extras); nothing is downloaded.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_digits needs scikit-learn; install it with `pip install scikit-learn`."
        ) from err
    bunch = sklearn_digits()
    return torch.from_numpy(bunch.data).float(), torch.from_numpy(bunch.target).long()

"""Checks for the autoencoder chapter's programming exercises."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from companion.exercises._common import (
    ExerciseError,
    _as_tensor,
    _call,
    _generator,
    _shape,
    _sweep,
)


def check_bce_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(logits, x)``: binary cross-entropy per example, summed over pixels, (B,).

    logits (B, D) are the decoder's pre-sigmoid outputs, x (B, D) in [0, 1].
    Some logits are large (±40), so a formula that takes log(sigmoid(·))
    directly overflows; the check says so.
    """
    g = _generator(0)
    B, D = 8, 20
    logits = 3 * torch.randn(B, D, generator=g, dtype=torch.float64)
    logits[0, :4] = torch.tensor([40.0, -40.0, 40.0, -40.0], dtype=torch.float64)
    x = torch.rand(B, D, generator=g, dtype=torch.float64)
    x[0, :4] = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    got = _as_tensor(_call(fn, logits.clone(), x.clone()), "your loss")
    expected = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    if got.numel() == 1:
        raise ExerciseError(
            f"your loss is one number; return one loss per example, shape ({B},), summing "
            "over the pixels (the mean over the batch comes later, in the training loop)."
        )
    _shape(got, (B,), "your loss", " Sum over the pixels (dim=1), one value per example.")
    if not torch.isfinite(got).all():
        raise ExerciseError(
            "your loss is inf or NaN for an example whose logits are ±40: σ(40) rounds to 1, "
            "so 1 − σ(40) underflows to 0 and its log is −inf. Compute log σ(a) and "
            "log(1 − σ(a)) without forming σ(a) first: softplus (or logsigmoid) stays finite."
        )
    error = (got - expected).abs().max().item()
    if error > 1e-6 * (1 + expected.abs().max().item()):
        if torch.allclose(got * D, expected, rtol=1e-6):
            hint = " It is D times too small: sum over the pixels instead of averaging."
        elif torch.allclose(got, -expected, rtol=1e-6):
            hint = " It has the wrong sign: the loss is minus the log-likelihood."
        elif torch.allclose(
            got, F.binary_cross_entropy(logits.sigmoid().sigmoid(), x, reduction="none").sum(1)
        ):
            hint = " You applied the sigmoid twice: `logits` are before the sigmoid."
        else:
            hint = (
                " Per pixel the loss is minus the Bernoulli log-likelihood of x under σ(a); "
                "check which term x multiplies and which 1 − x does."
            )
        raise ExerciseError(f"your loss is off by up to {error:.3g}.{hint}")
    print("check_bce_loss: correct, and stable for large logits.")


def check_kl_sparsity(fn: Callable[[float, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(rho, rho_hat)``: KL(Bernoulli(ρ) ‖ Bernoulli(ρ̂_j)) for each unit, (L,)."""
    rho = 0.05
    rho_hat = torch.tensor([0.01, 0.05, 0.2, 0.5, 0.9], dtype=torch.float64)
    got = _as_tensor(_call(fn, rho, rho_hat.clone()), "your penalty")
    L = len(rho_hat)
    _shape(got, (L,), "your penalty", " Return one value per hidden unit.")

    def kl(p, q):
        return p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))

    expected = kl(torch.tensor(rho, dtype=torch.float64), rho_hat)
    error = (got - expected).abs().max().item()
    if error > 1e-9:
        if torch.allclose(got, kl(rho_hat, torch.tensor(rho, dtype=torch.float64))):
            hint = (
                " That is KL(ρ̂ ‖ ρ), the arguments swapped: the target ρ comes first, "
                "ρ log(ρ/ρ̂) + (1 - ρ) log((1 - ρ)/(1 - ρ̂))."
            )
        elif torch.allclose(got, rho * torch.log(rho / rho_hat)):
            hint = (
                " You kept only the first term; a unit is a Bernoulli variable with two "
                "outcomes, so add (1 - ρ) log((1 - ρ)/(1 - ρ̂))."
            )
        else:
            hint = " Use ρ log(ρ/ρ̂) + (1 - ρ) log((1 - ρ)/(1 - ρ̂))."
        raise ExerciseError(f"your penalty is off by up to {error:.3g}.{hint}")
    print("check_kl_sparsity: correct; the penalty is 0 only where ρ̂ = ρ.")


def check_masking_noise(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``fn(x, level)``: x with each entry set to 0 with probability ``level``.

    The kept entries must be unchanged (no rescaling), the zeroed share close
    to ``level`` (within five standard errors), and x itself not modified.
    """
    torch.manual_seed(0)
    x = torch.rand(400, 50, dtype=torch.float64) + 0.1  # no zeros to start with
    original = x.clone()
    rows = _as_tensor(_call(fn, x, 0.5), "your result for level=0.5") == 0
    if torch.equal(rows[0], rows[1]) and torch.equal(rows[0], rows[2]):
        raise ExerciseError(
            "every example got the same mask: you drew one random number per column and "
            "reused it for every row. Draw an independent number for every entry of x."
        )
    for level in (0.0, 0.3, 0.75, 1.0):
        got = _as_tensor(_call(fn, x, level), f"your result for level={level}")
        if not torch.equal(x, original):
            raise ExerciseError(
                "your function changed its input x in place (an assignment into x[...] or a "
                "method ending in _): the caller's clean data is lost. Corrupt a copy."
            )
        _shape(got, tuple(x.shape), f"your result for level={level}")
        zeroed = got == 0
        kept = ~zeroed
        if kept.any() and not torch.allclose(got[kept], x[kept]):
            ratio = (got[kept] / x[kept]).mean().item()
            hint = (
                f" The kept entries are multiplied by {ratio:.3g}: that is dropout's "
                "rescaling; the denoising corruption leaves kept pixels unchanged."
                if abs(ratio - 1 / (1 - level)) < 1e-6
                else " Set the chosen entries to 0 and leave the others as they are."
            )
            raise ExerciseError(f"for level={level} the kept entries changed.{hint}")
        share = zeroed.double().mean().item()
        n = x.numel()
        tolerance = 5 * (level * (1 - level) / n) ** 0.5 + 1e-12
        if abs(share - level) > tolerance:
            hint = (
                " You zero entries with probability 1 − level: `level` is the share of "
                "entries destroyed, not the share kept."
                if abs(share - (1 - level)) <= tolerance
                else ""
            )
            raise ExerciseError(
                f"for level={level} you zeroed {share:.3f} of the entries; expected about "
                f"{level} (±{tolerance:.3f}).{hint}"
            )
    print("check_masking_noise: correct for levels 0, 0.3, 0.75 and 1.")


def check_sigmoid_jacobian_norm(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Check ``fn(W, b, x)``: ‖∂h/∂x‖²_F for h = sigmoid(W x + b), per example, (B,).

    W (L, D), b (L,), x (B, D). The reference differentiates with autograd.
    """
    g = _generator(3)
    L, D, B = 5, 7, 6
    W = torch.randn(L, D, generator=g, dtype=torch.float64)
    b = torch.randn(L, generator=g, dtype=torch.float64)
    x = torch.randn(B, D, generator=g, dtype=torch.float64)
    got = _as_tensor(_call(fn, W.clone(), b.clone(), x.clone()), "your norms")
    _shape(got, (B,), "your norms", " Return one squared norm per example.")

    def encoder(row: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(W @ row + b)

    jacobians = torch.func.vmap(torch.func.jacrev(encoder))(x)  # (B, L, D)
    expected = jacobians.pow(2).sum((1, 2))
    error = (got - expected).abs().max().item()
    if error > 1e-9 * (1 + expected.max().item()):
        h = torch.sigmoid(x @ W.T + b)
        row_norms = W.pow(2).sum(1)
        if torch.allclose(got, expected.sqrt()):
            hint = " That is the norm itself; the penalty is its square."
        elif torch.allclose(got, (h * (1 - h) * row_norms).sum(1)):
            hint = (
                " You squared W's entries but not the sigmoid's derivative h_j(1 − h_j): the "
                "Frobenius norm squares every entry of J, that factor included."
            )
        elif torch.allclose(got, row_norms.sum().expand(B)):
            hint = " You left out the sigmoid's derivative h_j(1 - h_j) from the chain rule."
        else:
            hint = (
                " Write J with the chain rule, row j for hidden unit j (the sigmoid's "
                "derivative at unit j times row j of W), then add the squares of its entries."
            )
        raise ExerciseError(f"your norms are off by up to {error:.3g}.{hint}")
    print("check_sigmoid_jacobian_norm: correct; matches the autograd Jacobian.")


def check_hamming_distances(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(a, b)``: differing bits between each row of a (n, k) and of b (m, k), (n, m)."""
    g = _generator(4)
    n, m, k = 6, 9, 16
    a = (torch.rand(n, k, generator=g) < 0.5).to(torch.uint8)
    b = (torch.rand(m, k, generator=g) < 0.5).to(torch.uint8)
    got = _as_tensor(_call(fn, a.clone(), b.clone()), "your distances")
    expected = (a[:, None, :] != b[None, :, :]).sum(2).double()
    hint = " It looks transposed: rows for a, columns for b." if got.shape == (m, n) else ""
    _shape(got, (n, m), "your distances", hint)
    if not torch.equal(got, expected):
        if torch.equal(got, k - expected):
            hint = " You counted the bits that agree; count those that differ."
        else:
            i, j = map(int, (got != expected).nonzero()[0])
            hint = (
                f" For a[{i}] and b[{j}] you gave {got[i, j]:.0f}, expected {expected[i, j]:.0f}."
            )
        raise ExerciseError(f"your distances are wrong.{hint}")
    print("check_hamming_distances: correct for all pairs.")


def check_precision_at_k(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> None:
    """Check ``fn(retrieved_labels, query_labels)``: mean precision@k over the queries.

    retrieved_labels (m, k) holds the labels of the k items returned for each
    of the m queries, query_labels (m,) the queries' own labels.
    """
    g = _generator(5)
    m, k = 12, 5
    query = torch.randint(0, 3, (m,), generator=g)
    retrieved = torch.randint(0, 3, (m, k), generator=g)
    retrieved[0] = query[0]  # one perfect query
    got = _as_tensor(_call(fn, retrieved.clone(), query.clone()), "your precision")
    if got.numel() != 1:
        raise ExerciseError(
            f"your precision has shape {tuple(got.shape)}; return one number, the precision "
            "averaged over the queries."
        )
    hits = (retrieved == query[:, None]).double()
    expected = hits.mean().item()
    got = got.item()
    if abs(got - expected) > 1e-6:
        if abs(got - hits.sum().item() / m) < 1e-6:
            hint = " It is k times too large: divide each query's hits by k."
        elif abs(got - (retrieved == query[None, :k]).double().mean().item()) < 1e-6:
            hint = " Compare each row with its own query label: query_labels[:, None]."
        else:
            hint = " Precision@k = (relevant items among the k returned) / k, averaged."
        raise ExerciseError(f"your precision is {got:.4g}, expected {expected:.4g}.{hint}")
    print("check_precision_at_k: correct.")


def check_optimal_denoiser(
    fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
) -> None:
    """Check ``fn(x_noisy, data, sigma)``: the best denoiser E[x | x̃] for Gaussian noise.

    The clean x is drawn uniformly from the rows of ``data`` (N, d) and
    x̃ = x + σ ε; return the posterior mean for each row of x_noisy (B, d).
    """
    g = _generator(6)
    data = torch.randn(30, 2, generator=g, dtype=torch.float64) * 2
    x_noisy = torch.randn(10, 2, generator=g, dtype=torch.float64) * 2
    sigma = 0.7
    got = _as_tensor(_call(fn, x_noisy.clone(), data.clone(), sigma), "your denoised points")
    _shape(got, tuple(x_noisy.shape), "your denoised points")

    def posterior_mean(variance: float) -> torch.Tensor:
        weights = torch.softmax(-torch.cdist(x_noisy, data).pow(2) / (2 * variance), dim=1)
        return weights @ data

    expected = posterior_mean(sigma**2)
    error = (got - expected).abs().max().item()
    if error > 1e-8:
        nearest = data[torch.cdist(x_noisy, data).argmin(1)]
        if torch.allclose(got, posterior_mean(sigma)):
            hint = " You used σ where the Gaussian needs σ² (exp(-‖x̃ - x_i‖² / 2σ²))."
        elif torch.allclose(got, nearest):
            hint = (
                " That is the nearest data point, the limit σ → 0; for σ > 0 average "
                "all points weighted by their Gaussian likelihoods."
            )
        elif torch.allclose(
            got, torch.exp(-torch.cdist(x_noisy, data).pow(2) / (2 * sigma**2)) @ data
        ):
            hint = " Normalise the weights of each noisy point to sum to 1 (a softmax)."
        else:
            hint = (
                " The posterior mean averages the data points, each weighted by the Gaussian "
                "likelihood of x̃ given that point; check the exponent of the weights."
            )
        raise ExerciseError(f"your denoised points are off by up to {error:.3g}.{hint}")
    print("check_optimal_denoiser: correct; r(x̃) - x̃ points toward the data.")


def check_linear_autoencoder(
    fn: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]],
) -> None:
    """Check ``fn(X, k)``: optimal linear encoder (k, d) and decoder (d, k) for X (n, d).

    The autoencoder reconstructs ``decoder @ encoder @ (x - mean) + mean``
    (biases take care of the mean). Any pair whose product is the projector
    onto the top-k principal subspace is optimal, not only the components.
    """
    from companion.exercises.pca import _exercise_data, _reference_pca

    X = _exercise_data(seed=7)
    n, d = X.shape
    k = 2
    out = _call(fn, X.clone(), k)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise ExerciseError(
            "return two things: (encoder of shape (k, d), decoder of shape (d, k))."
        )
    encoder = _as_tensor(out[0], "your encoder")
    decoder = _as_tensor(out[1], "your decoder")
    _shape(encoder, (k, d), "your encoder")
    _shape(decoder, (d, k), "your decoder")
    product = decoder @ encoder
    _, vectors = _reference_pca(X, k)
    projector = vectors @ vectors.T
    error = (product - projector).abs().max().item()
    if error > 1e-6:
        values_all, vectors_all = torch.linalg.eigh(torch.cov(X.T))
        low = vectors_all[:, :k]
        if torch.allclose(product, low @ low.T, atol=1e-6):
            hint = (
                " You project onto the smallest-variance directions: torch.linalg.eigh "
                "sorts eigenvalues in ascending order."
            )
        elif torch.allclose(product @ product, product, atol=1e-6):
            hint = " decoder @ encoder is a projector, but onto the wrong subspace."
        else:
            hint = (
                " decoder @ encoder is not a projector (P @ P ≠ P): the decoder must undo the "
                "encoder on the principal subspace, not just have the right shape."
            )
        raise ExerciseError(
            f"decoder @ encoder differs from the projector onto the top-{k} principal "
            f"subspace by up to {error:.3g}.{hint}"
        )
    print(
        "check_linear_autoencoder: correct; your weights span the principal subspace "
        "(they need not be the principal components themselves)."
    )


NOISE_LEVELS = (0.0, 0.1, 0.3)


def _noisy_unit_circle(n: int, seed: int) -> torch.Tensor:
    """n points (float32) near the unit circle, radial noise of 0.02."""
    g = _generator(seed)
    angle = 2 * torch.pi * torch.rand(n, generator=g)
    return torch.stack([angle.cos(), angle.sin()], 1) + 0.02 * torch.randn(n, 2, generator=g)


def check_denoising_level(fn: Callable, seed: int = 0) -> None:
    """Check ``fn(x_train, x_test, level, seed)``: what a DAE's noise level does to it.

    ``fn`` trains a denoising autoencoder with Gaussian corruption of standard deviation
    ``level`` on the 2-D points ``x_train`` (800, 2) near the unit circle, seeded by
    ``seed``, and returns, measured on ``x_test``, ``{"error": ..., "normal": ...}``:
    the mean squared reconstruction error of the clean points and the mean length of
    J_r(x) n(x), the derivative of the reconstruction along the circle's normal
    n(x) = x / |x|. The check runs levels 0, 0.1 and 0.3 and judges what it measured:
    the more noise, the more the reconstruction flattens across the circle (a smaller
    normal derivative) and the worse it reconstructs clean points.
    """
    x_train, x_test = _noisy_unit_circle(800, seed), _noisy_unit_circle(400, seed + 1000)
    runs, shown = _sweep(
        fn,
        NOISE_LEVELS,
        lambda level: (x_train.clone(), x_test.clone(), level, seed),
        ("error", "normal"),
        lambda level: f"level={level}",
        lambda v, r: f"level {v:g}: error {r['error']:.4f}, normal {r['normal']:.3f}",
    )
    normal = [runs[v]["normal"] for v in NOISE_LEVELS]
    error = [runs[v]["error"] for v in NOISE_LEVELS]
    if min(normal) < 0 or min(error) < 0:
        raise ExerciseError(
            f"you measured {shown}: a squared error and the length of a vector are never negative."
        )
    if max(normal) - min(normal) < 1e-6 and max(error) - min(error) < 1e-9:
        raise ExerciseError(
            f"your measurements are the same at every level ({shown}): your function does "
            "not pass level to the model as the noise's standard deviation."
        )
    if min(normal) > 0.8:
        raise ExerciseError(
            f"you measured {shown}: the derivative stays near 1 at every level. That is what "
            "happens along the circle, where the reconstruction must follow the data; measure "
            "J_r(x) n(x) with n(x) = x / |x|, the direction across the circle."
        )
    if normal[0] < normal[-1]:
        raise ExerciseError(
            f"you measured {shown}: the normal derivative grows with the noise, the opposite "
            "of a denoiser. Corrupt the training inputs (not the targets) with noise of "
            "standard deviation level, and measure the trained model on clean x_test."
        )
    if not (normal[0] > normal[1] > normal[2]) or normal[2] > 0.6 * normal[0]:
        raise ExerciseError(
            f"you measured {shown}; with more noise the reconstruction should flatten across "
            "the circle at every step, to under 60 % of the noise-free model's derivative at "
            "level 0.3. Train each level from scratch, long enough (the check's data are "
            "small), and measure with the model in eval mode, where no noise is added."
        )
    if not error[0] < error[-1]:
        raise ExerciseError(
            f"you measured {shown}; pulling points towards the circle costs accuracy on clean "
            "points, so the error should grow with the level. Is 'error' measured on clean "
            "x_test, without corruption?"
        )
    print(
        f"check_denoising_level: correct; {shown}. More noise, more contraction across the "
        "circle, at the price of clean reconstructions."
    )

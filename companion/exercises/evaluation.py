"""Checks for the chapter on autoregressive models and evaluation: likelihoods and masks.

The checks on sample-based scores are in :mod:`companion.exercises.evaluation_samples`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from companion.exercises._common import (
    ExerciseError,
    _as_tensor,
    _bars,
    _call,
    _close,
    _generator,
    _independent_nll,
    _near,
    _nll_sweep,
    _scalar,
    _shape,
)


def check_bits_per_dim(fn: Callable[[torch.Tensor, tuple[int, ...]], float]) -> None:
    """Check ``fn(nll, image_shape)``: mean negative log-likelihood in bits per dimension.

    nll (N,) holds −log p(x_n) of N test images in nats; image_shape is the
    shape of one image, (C, H, W). Return one number,
    mean(nll) / (C·H·W · ln 2).
    """
    g = _generator(10)
    uniform = torch.full((4,), 784 * math.log(2), dtype=torch.float64)  # p(x) = 2^-784
    cases = [
        (uniform, (1, 28, 28)),
        (250 + 20 * torch.rand(6, generator=g, dtype=torch.float64), (1, 28, 28)),
        (600 + 50 * torch.rand(5, generator=g, dtype=torch.float64), (3, 8, 8)),
    ]
    for nll, shape in cases:
        got = _scalar(
            _call(fn, nll.clone(), shape), "your bits per dimension", " (the mean over examples)"
        )
        D = math.prod(shape)
        expected = nll.mean().item() / (D * math.log(2))
        if abs(got - expected) <= 1e-9 * (1 + abs(expected)):
            continue

        if _near(got, expected * math.log(2)):
            hint = " That is nats per dimension: divide by ln 2 as well."
        elif _near(got, expected * D):
            hint = f" That is bits per image: divide by the D = {D} dimensions as well."
        elif _near(got, expected * D * math.log(2)):
            hint = f" That is nats per image: divide by D · ln 2 = {D} · ln 2."
        elif _near(got, expected * D / math.prod(shape[1:])):
            hint = (
                f" You divided by H·W = {math.prod(shape[1:])} only; every channel is a "
                f"dimension too: D = C·H·W = {D}."
            )
        elif _near(got, -expected):
            hint = " It has the wrong sign: nll holds −log p(x), already positive."
        else:
            hint = (
                " Check the three steps: the mean over the images, per dimension (every "
                "channel and pixel), and from nats to bits."
            )
        raise ExerciseError(
            f"for {len(nll)} images of shape {shape} your answer is {got:.6g}, expected "
            f"{expected:.6g}.{hint}"
        )
    print("check_bits_per_dim: correct; the uniform model on binary pixels scores 1 bit/dim.")


def check_chain_rule_log_prob(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Check ``fn(x, W, b)``: log p(x) under a logistic fully observed belief network.

    x (N, D) binary; p(x_d = 1 | x_<d) = σ(Σ_{j<d} W[d, j] x_j + b[d]). W is
    (D, D) and its entries on and above the diagonal are not part of the
    model: the answer must ignore them. Return log p(x) per row, (N,), in
    nats, finite even when the logits are ±60.
    """
    g = _generator(11)
    D = 6
    x_all = ((torch.arange(2**D)[:, None] >> torch.arange(D)) & 1).to(torch.float64)  # (64, D)
    W = torch.randn(D, D, generator=g, dtype=torch.float64)
    b = torch.randn(D, generator=g, dtype=torch.float64)

    def log_prob(x, W, b, lower=-1, transpose=False):
        Wm = torch.tril(W, lower)
        a = x @ (Wm if transpose else Wm.T) + b  # (N, D) logits
        return (x * F.logsigmoid(a) + (1 - x) * F.logsigmoid(-a)).sum(1)

    extreme_W, extreme_b = 30 * W, 30 * b
    extreme_b[0] = 60.0  # x_0 = 0 has log-probability −60, not −inf
    cases = [("all 64 vectors", W, b), ("logits up to ±60", extreme_W, extreme_b)]
    for name, Wc, bc in cases:
        got = _as_tensor(_call(fn, x_all.clone(), Wc.clone(), bc.clone()), "your log p(x)")
        _shape(got, (2**D,), "your log p(x)", " Sum over the D variables: one value per row.")
        if not torch.isfinite(got).all():
            raise ExerciseError(
                f"your log p(x) has inf or NaN for {name}: σ(a) rounds to 1 for a > 37, so "
                "1 − σ(a) underflows to 0 and its log is −inf. Compute log σ(a) and "
                "log(1 − σ(a)) without forming σ(a) first (logsigmoid, or softplus)."
            )
        expected = log_prob(x_all, Wc, bc)
        if _close(got, expected, 1e-9):
            continue
        error = (got - expected).abs().max().item()
        if _close(got, log_prob(x_all, Wc, bc, lower=D), 1e-9):
            hint = (
                " You used all of W, so x_d is predicted from itself and from later variables; "
                "keep only the entries below the diagonal, W[d, j] for j < d."
            )
        elif _close(got, log_prob(x_all, Wc, bc, lower=0), 1e-9):
            hint = " You kept the diagonal of W: x_d then predicts itself; keep only j < d."
        elif _close(got, log_prob(x_all, Wc, bc, transpose=True), 1e-9):
            hint = (
                " You used column d of W for the logit of x_d; it uses row d, W[d, j] for "
                "j < d: mind the transpose in the matrix product."
            )
        elif _close(got, expected / D, 1e-9):
            hint = " You averaged over the D variables; the log-probabilities add."
        else:
            hint = " log p(x) = Σ_d [x_d log σ(a_d) + (1 − x_d) log(1 − σ(a_d))]."
            total = got.exp().sum().item()
            if name == "all 64 vectors" and abs(total - 1) > 1e-6:
                hint += f" Your p(x) sums to {total:.4g} over them, not 1."
            elif name == "all 64 vectors":
                hint += (
                    " Your p(x) sums to 1 over them: a distribution, but not this one; check "
                    "which variable each row of W and each b[d] predict."
                )
        raise ExerciseError(f"for {name} your log p(x) is off by up to {error:.3g}.{hint}")
    print("check_chain_rule_log_prob: correct; p(x) sums to 1 over all 64 vectors.")


def _reference_masks(degrees: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """MADE's masks (out, in) by explicit loops over units."""
    masks = []
    for below, above in zip(degrees[:-1], degrees[1:], strict=True):
        mask = torch.zeros(len(above), len(below), dtype=torch.float64)
        for b_unit, m_b in enumerate(above.tolist()):
            for a_unit, m_a in enumerate(below.tolist()):
                mask[b_unit, a_unit] = float(m_b >= m_a)
        masks.append(mask)
    out = torch.zeros(len(degrees[0]), len(degrees[-1]), dtype=torch.float64)
    for d, m_d in enumerate(degrees[0].tolist()):
        for a_unit, m_a in enumerate(degrees[-1].tolist()):
            out[d, a_unit] = float(m_d > m_a)
    return masks + [out]


def check_made_masks(fn: Callable[[list[torch.Tensor]], list[torch.Tensor]]) -> None:
    """Check ``fn(degrees)``: MADE's masks, one per weight matrix, in nn.Linear's (out, in) layout.

    degrees = [m_0, m_1, …, m_L]: m_0 (D,) the degree of each input (its
    position 1..D in the ordering), m_l (H_l,) the degrees of hidden layer l,
    in 1..D−1. Return L + 1 masks of zeros and ones: mask l (H_{l+1}, H_l)
    keeps unit a → unit b when m(b) ≥ m(a); the last, (D, H_L), keeps
    hidden unit a → output d when m_0[d] > m(a).
    """
    g = _generator(12)
    cases = []
    for name, D, widths, order in [
        ("natural order, two hidden layers", 5, (7, 6), torch.arange(5)),
        ("a random order, three hidden layers", 6, (8, 5, 7), torch.randperm(6, generator=g)),
    ]:
        inputs = torch.empty(D, dtype=torch.long)
        inputs[order] = torch.arange(1, D + 1)
        hidden = [torch.randint(1, D, (h,), generator=g) for h in widths]
        cases.append((name, [inputs, *hidden]))
    for name, degrees in cases:
        answer = _call(fn, [m.clone() for m in degrees])
        expected = _reference_masks(degrees)
        if not isinstance(answer, (list, tuple)) or len(answer) != len(expected):
            count = len(answer) if isinstance(answer, (list, tuple)) else type(answer).__name__
            raise ExerciseError(
                f"for {name} you returned {count} masks, expected {len(expected)}: one per "
                "weight matrix, input → hidden, hidden → hidden, …, hidden → output."
            )
        got = [_as_tensor(m, f"mask {i}") for i, m in enumerate(answer)]
        for i, (mask, ref) in enumerate(zip(got, expected, strict=True)):
            hint = (
                " It is transposed: nn.Linear's weight is (out, in)."
                if mask.T.shape == ref.shape
                else ""
            )
            _shape(mask, tuple(ref.shape), f"for {name}, mask {i}", hint)
        wrong = [
            i
            for i, (mask, ref) in enumerate(zip(got, expected, strict=True))
            if not torch.equal(mask, ref)
        ]
        if not wrong:
            continue
        i, last = wrong[0], len(expected) - 1
        n_bad = int((got[i] != expected[i]).sum())
        strict = (degrees[i + 1][:, None] > degrees[i][None, :]).double() if i < last else None
        if i < last and torch.equal(got[i], strict):
            hint = (
                " You used m(b) > m(a); between hidden layers (and from the inputs) equal "
                "degrees are allowed: m(b) ≥ m(a)."
            )
        elif i == last and torch.equal(
            got[i], (degrees[0][:, None] >= degrees[-1][None, :]).double()
        ):
            hint = (
                " You used m_0[d] ≥ m(a): a hidden unit of degree m_0[d] may have seen x_d, so "
                "output d would see itself. Use a strict m_0[d] > m(a)."
            )
        elif i == last and torch.equal(
            got[i], (torch.arange(1, len(degrees[0]) + 1)[:, None] > degrees[-1][None, :]).double()
        ):
            hint = (
                " Output d must use the degree of input d, m_0[d] (its place in the ordering), "
                "not its index d + 1."
            )
        else:
            path = torch.eye(len(degrees[0]), dtype=torch.float64)
            for mask in got:
                path = mask @ path  # (units, D): number of paths from each input
            leaks = (path > 0) & (degrees[0][:, None] <= degrees[0][None, :])
            hint = (
                f" {int(leaks.sum())} (output d, input j) pairs are connected although input j "
                "comes at or after d in the ordering."
                if leaks.any()
                else " Compare m(b) with m(a) for every pair."
            )
        raise ExerciseError(
            f"for {name}, mask {i} differs from the expected one in {n_bad} of "
            f"{expected[i].numel()} entries.{hint}"
        )
    print("check_made_masks: correct; no output is connected to its own input or a later one.")


def _conv_mask(k: int, kind: str) -> torch.Tensor:
    """The raster-order mask by a loop over kernel positions (i, j)."""
    c = k // 2
    return torch.tensor(
        [[float(i < c or (i == c and (j < c or (kind == "B" and j == c)))) for j in range(k)]
         for i in range(k)],
        dtype=torch.float64,
    )  # fmt: skip


def check_masked_conv_mask(fn: Callable[[int, str], torch.Tensor]) -> None:
    """Check ``fn(kernel_size, mask_type)``: PixelCNN's (k, k) kernel mask for raster order.

    Ones at the rows above the centre and left of the centre in its row;
    type ``"B"`` also keeps the centre, type ``"A"`` does not; zeros elsewhere.
    """
    for k in (3, 5, 7):
        c = k // 2
        for mask_type in ("A", "B"):
            got = _as_tensor(_call(fn, k, mask_type), f"your {k}×{k} mask")
            if got.numel() == k * k and tuple(got.shape[-2:]) == (k, k):
                got = got.reshape(k, k)  # (1, 1, k, k) is fine too
            _shape(got, (k, k), f"your {k}×{k} mask of type {mask_type}")

            expected = _conv_mask(k, mask_type)
            if torch.equal(got, expected):
                continue
            if torch.equal(got, _conv_mask(k, "B" if mask_type == "A" else "A")):
                hint = " You swapped the types: A hides the centre pixel, B keeps it."
            elif torch.equal(got, expected.flip(1)):
                hint = " Raster order runs left to right: keep the pixels left of the centre."
            elif torch.equal(got, expected.T):
                hint = (
                    " That is column-by-column order; in raster order the rows above come "
                    "first, then the pixels to the left in the same row."
                )
            elif torch.equal(got[c + 1 :], torch.ones(k - c - 1, k, dtype=torch.float64)):
                hint = " The rows below the centre come later in raster order: zero them."
            else:
                hint = (
                    " In raster order the pixels before the centre are the rows above it and, "
                    "in its own row, the pixels to its left; only type B keeps the centre."
                )
            n_bad = int((got != expected).sum())
            raise ExerciseError(
                f"your {k}×{k} mask of type {mask_type} is wrong in {n_bad} entries.{hint}"
            )
    print("check_masked_conv_mask: correct for 3×3, 5×5 and 7×7, types A and B.")


MADE_WIDTHS = (2, 16, 128)


def check_made_hidden(fn: Callable, seed: int = 0) -> None:
    """Check ``fn(x_train, x_test, hidden, seed)``: held-out NLL of a MADE of that width.

    ``fn`` trains a MADE with one hidden layer of ``hidden`` units on the binary rows
    ``x_train`` (1000, 36), seeded by ``seed``, and returns the mean negative
    log-likelihood of ``x_test`` in nats per image. The check runs widths 2, 16 and 128
    on 6×6 images of random bars drawn from ``seed`` and judges what it measured: the
    NLL falls as the width grows, from about that of independent pixels to well below.
    """
    x_train, x_test = _bars(1000, seed), _bars(1000, seed + 1000)
    independent = _independent_nll(x_train, x_test)
    nll, shown = _nll_sweep(
        fn,
        x_train,
        x_test,
        MADE_WIDTHS,
        seed,
        setting="hidden",
        every="width",
        unit="units",
        per="image",
        passes="as the width of its hidden layer",
        diverged="the training diverged or a log took 0.",
        negative="that is the log-likelihood; return its negative, the NLL in nats.",
    )
    values = list(nll.values())
    if max(values) < 0.1 * independent:
        raise ExerciseError(
            f"your values ({shown}) are far below what any model can reach here (independent "
            f"pixels score {independent:.2f} nats per image): return nats per image, summed "
            "over the 36 pixels, not bits per dimension or a per-pixel mean."
        )
    if not nll[MADE_WIDTHS[0]] > nll[MADE_WIDTHS[1]] > nll[MADE_WIDTHS[2]]:
        raise ExerciseError(
            f"your held-out NLLs are {shown}; wider hidden layers can model more of the "
            "dependencies between pixels, and with 1000 images and this training budget a "
            "correct run improves at every step. Train a new model for each width, and "
            "measure x_test with the model in eval mode."
        )
    if nll[MADE_WIDTHS[-1]] > independent - 5:
        raise ExerciseError(
            f"your held-out NLLs are {shown}, but independent pixels already score "
            f"{independent:.2f}: with 128 units a correct run is at least 5 nats better. "
            "Train longer (or with a larger learning rate), on x_train."
        )
    print(
        f"check_made_hidden: correct; your held-out NLLs are {shown}, against "
        f"{independent:.2f} for independent pixels."
    )

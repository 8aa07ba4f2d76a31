"""Checks for the normalizing-flows chapter's programming exercises.

The coupling checks hand the student's function a mask ``m`` (D,) of 0s and 1s and a
fixed network ``net``: ``net(h)`` maps rows (N, D) to a scale ``s`` and a shift ``t``,
each (N, D). Its outputs depend on every coordinate of its input and are non-zero on
the kept coordinates too, so an answer that feeds it the whole of x, or forgets to
keep only the transformed half of s, is caught. The references are written out here,
independently of ``companion.models``; the log-determinant's is the log|det| of the
full Jacobian that autograd computes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.exercises._common import (
    ExerciseError,
    _as_tensor,
    _call,
    _close,
    _generator,
    _near,
    _nll_sweep,
    _numbers,
    _scalar,
    _shape,
)

D64 = torch.float64


def _scale_shift_net(D: int, seed: int) -> Callable[[torch.Tensor], tuple[torch.Tensor, ...]]:
    """A fixed network h (N, D) -> (s, t), each (N, D), that reads every coordinate of h."""
    g = _generator(seed)
    W1 = torch.randn(D, 8, generator=g, dtype=D64) / math.sqrt(D)
    W2 = torch.randn(8, 2 * D, generator=g, dtype=D64) / math.sqrt(8)
    b = 0.3 * torch.randn(2 * D, generator=g, dtype=D64)

    def net(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.tanh(h.to(D64) @ W1) @ W2 + b  # (N, 2D)
        return out[:, :D], out[:, D:]

    return net


def _forward(x, mask, net, *, masked_input=True, masked_output=True, order="scale-first"):
    """z of the affine coupling layer, with the usual mistakes as switches."""
    s, t = net(x * mask if masked_input else x)
    moved = x * torch.exp(s) + t if order == "scale-first" else (x + t) * torch.exp(s)
    return mask * x + (1 - mask) * moved if masked_output else moved


def _inverse(z, mask, net, *, masked_input=True, masked_output=True, order="shift-first",
             sign=-1.0):  # fmt: skip
    s, t = net(z * mask if masked_input else z)
    back = (z - t) * torch.exp(sign * s) if order == "shift-first" else z * torch.exp(-s) - t
    return mask * z + (1 - mask) * back if masked_output else back


def _autograd_log_det(f: Callable, x: torch.Tensor) -> torch.Tensor:
    """log|det ∂f/∂x| per row of x (N, D), from the full Jacobian of f at each row."""
    values = []
    for row in x:
        J = torch.autograd.functional.jacobian(lambda r: f(r[None])[0], row)  # (D, D)
        values.append(torch.linalg.slogdet(J).logabsdet)
    return torch.stack(values)


def _coupling_cases(seed: int):
    g = _generator(seed)
    cases = []
    for name, D, mask in [
        ("D = 4, alternating mask", 4, torch.tensor([1.0, 0, 1, 0], dtype=D64)),
        ("D = 6, first half kept", 6, torch.tensor([1.0, 1, 1, 0, 0, 0], dtype=D64)),
        ("D = 5, an irregular mask", 5, torch.tensor([0.0, 1, 0, 0, 1], dtype=D64)),
    ]:
        x = 1.5 * torch.randn(7, D, generator=g, dtype=D64)
        cases.append((name, x, mask, _scale_shift_net(D, seed + D)))
    return cases


def check_coupling_log_det(fn: Callable) -> None:
    """Check ``fn(x, mask, net) -> (z, log_det)``: an affine coupling layer, forward.

    x (N, D); mask (D,) of 0s and 1s, 1 on the kept coordinates; ``net(h)`` returns
    s, t (N, D) from rows h (N, D). With s, t = net(m ⊙ x),
    z = m ⊙ x + (1 − m) ⊙ (x ⊙ exp(s) + t), and log_det (N,) is log|det ∂z/∂x|.
    """
    for name, x, mask, net in _coupling_cases(20):
        answer = _call(fn, x.clone(), mask.clone(), net)
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise ExerciseError(
                f"for {name} you returned a {type(answer).__name__}; return a pair "
                "(z, log_det): z (N, D) and log|det J| (N,)."
            )
        z = _as_tensor(answer[0], "your z")
        log_det = _as_tensor(answer[1], "your log_det")
        N, D = x.shape
        _shape(z, (N, D), f"for {name}, your z", " z has the shape of x.")
        if log_det.shape == (N, D):
            raise ExerciseError(
                f"for {name}, your log_det has shape {(N, D)}, one value per coordinate; "
                f"return one value per row, shape ({N},): the log-determinant of the whole "
                "Jacobian."
            )
        _shape(log_det, (N,), f"for {name}, your log_det", " One value per row of x.")

        expected_z = _forward(x, mask, net)
        if not _close(z, expected_z, 1e-9):
            error = (z - expected_z).abs().max().item()
            if _close(z, _forward(x, mask, net, masked_input=False), 1e-9):
                hint = (
                    " net must see only the kept coordinates: give it m ⊙ x, or z could not "
                    "be inverted (the kept half would no longer determine s and t)."
                )
            elif _close(z, _forward(x, mask, net, masked_output=False), 1e-9):
                hint = " The kept coordinates (mask 1) must pass unchanged; you moved them too."
            elif _close(z, _forward(x, mask, net, order="shift-first"), 1e-9):
                hint = " Scale first, then shift: x ⊙ exp(s) + t."
            else:
                hint = " z = m ⊙ x + (1 − m) ⊙ (x ⊙ exp(s) + t) with s, t = net(m ⊙ x)."
            raise ExerciseError(f"for {name} your z is off by up to {error:.3g}.{hint}")

        expected = _autograd_log_det(lambda r, mask=mask, net=net: _forward(r, mask, net), x)
        if _close(log_det, expected, 1e-8):
            continue
        s = net(x * mask)[0]
        error = (log_det - expected).abs().max().item()
        if _close(log_det, -expected, 1e-8):
            hint = (
                " It has the wrong sign: the layer stretches the free coordinates by "
                "exp(s), so the log-determinant is +Σ s over them."
            )
        elif _close(log_det, s.sum(1), 1e-8):
            hint = (
                " You summed s over every coordinate; the kept ones pass unchanged (their "
                "diagonal entries of J are 1), so only the free ones (mask 0) count."
            )
        elif _close(log_det, ((1 - mask) * torch.exp(s)).sum(1), 1e-8):
            hint = " The diagonal of J holds exp(s); its log is s, not exp(s)."
        elif _close(log_det, ((1 - mask) * s).mean(1), 1e-8) or _close(
            log_det, ((1 - mask) * s).sum(1) / (1 - mask).sum(), 1e-8
        ):
            hint = " You averaged; the logs of the diagonal entries add up."
        elif _close(log_det, (mask * s).sum(1), 1e-8):
            hint = " You used the scales of the kept coordinates; it is the others that move."
        else:
            hint = (
                " J is triangular once the kept coordinates come first: its determinant is "
                "the product of its diagonal."
            )
        raise ExerciseError(f"for {name} your log_det is off by up to {error:.3g}.{hint}")
    print("check_coupling_log_det: correct; log_det equals log|det J| of autograd's Jacobian.")


def check_coupling_inverse(fn: Callable) -> None:
    """Check ``fn(z, mask, net) -> x``: the inverse of the affine coupling layer.

    Same layer as in :func:`check_coupling_log_det`: z = m ⊙ x + (1 − m) ⊙
    (x ⊙ exp(s) + t) with s, t = net(m ⊙ x). Return x (N, D) from z (N, D).
    """
    for name, x, mask, net in _coupling_cases(21):
        z = _forward(x, mask, net)
        got = _as_tensor(_call(fn, z.clone(), mask.clone(), net), "your x")
        _shape(got, tuple(x.shape), f"for {name}, your x", " x has the shape of z.")
        if _close(got, x, 1e-9):
            continue
        error = (got - x).abs().max().item()
        if _close(got, _inverse(z, mask, net, masked_input=False), 1e-9):
            hint = (
                " Give net the kept coordinates only, m ⊙ z: they equal m ⊙ x, which is "
                "what set s and t in the forward pass."
            )
        elif _close(got, _inverse(z, mask, net, masked_output=False), 1e-9):
            hint = " The kept coordinates (mask 1) passed unchanged; copy them from z."
        elif _close(got, _inverse(z, mask, net, order="scale-first"), 1e-9):
            hint = (
                " Undo the steps in reverse order: the forward pass scaled, then shifted, so "
                "the inverse removes the shift first."
            )
        elif _close(got, _inverse(z, mask, net, sign=1.0), 1e-9):
            hint = " To undo a multiplication by exp(s), multiply by exp(−s)."
        else:
            hint = " Solve z = x ⊙ exp(s) + t for x on the free coordinates."
        raise ExerciseError(
            f"for {name}, your x is off by up to {error:.3g}: pushing it forward does not "
            f"give z back.{hint}"
        )
    print("check_coupling_inverse: correct; forward(inverse(z)) = z.")


def check_dequantized_bits_per_dim(fn: Callable[[torch.Tensor, int], float]) -> None:
    """Check ``fn(log_px, D)``: the 8-bit bits per dimension of a flow's log-densities.

    log_px (N,) holds log p(x_n) in nats of N dequantised images scaled to
    x = y / 256 in [0, 1)^D (y = k + u, k the 8-bit grey levels). Return one number:
    the mean −log2 p(y) / D on the scale of y, the figure papers report.
    """
    g = _generator(22)
    cases = [
        ("a trained flow, D = 784", 1500 + 200 * torch.rand(6, generator=g, dtype=D64), 784),
        ("a weak model, D = 3072", -300 + 50 * torch.rand(5, generator=g, dtype=D64), 3072),
        ("a model uniform on [0, 1)^784", torch.zeros(4, dtype=D64), 784),
    ]
    for name, log_px, D in cases:
        got = _scalar(
            _call(fn, log_px.clone(), D), "your bits per dimension", " (the mean over images)"
        )
        nats = -log_px.mean().item()
        expected = (nats + D * math.log(256)) / (D * math.log(2))
        if _near(got, expected):
            continue
        if _near(got, nats / (D * math.log(2))):
            hint = (
                " You scored x on [0, 1)^D. The density of y = 256 x is p(x) / 256^D: "
                "add the Jacobian of the scaling, D log 256 nats, to the NLL."
            )
        elif _near(got, (nats - D * math.log(256)) / (D * math.log(2))):
            hint = (
                " The scaling term has the wrong sign: y = 256 x spreads the mass over a "
                "cube 256^D times larger, so its density is lower, its NLL higher."
            )
        elif _near(got, (nats + D * math.log(255)) / (D * math.log(2))):
            hint = " The grey levels are 0..255, so y lies in [0, 256): scale by 256, not 255."
        elif _near(got, (nats + math.log(256)) / (D * math.log(2))):
            hint = " The scaling acts on each of the D coordinates: D log 256 nats, not log 256."
        elif _near(got, expected * math.log(2)):
            hint = " That is nats per dimension: divide by ln 2 as well."
        elif _near(got, expected * D):
            hint = f" That is bits per image: divide by the D = {D} dimensions as well."
        elif _near(got, -expected):
            hint = " It has the wrong sign: bits per dimension of a negative log-likelihood."
        else:
            hint = (
                " Three steps: the NLL of x, plus the Jacobian of the scaling to y, then "
                "per dimension and in bits."
            )
        raise ExerciseError(f"for {name} your answer is {got:.6g}, expected {expected:.6g}.{hint}")
    print("check_dequantized_bits_per_dim: correct; the uniform density scores exactly 8.")


def _affine_log_likelihood(x: torch.Tensor, shift: float, log_scale: float) -> float:
    """Mean log p(x) of the flow z = (x − shift) exp(−log_scale), z ~ N(0, 1)."""
    z = (x - shift) * math.exp(-log_scale)
    return (-0.5 * z**2 - 0.5 * math.log(2 * math.pi) - log_scale).mean().item()


def check_affine_flow_fit(fn: Callable[[torch.Tensor], dict]) -> None:
    """Check ``fn(x)``: a 1-D affine flow fitted by maximum likelihood.

    x (N,) are samples. The flow is z = (x − shift) · exp(−log_scale) with z ~ N(0, 1).
    Return ``{"shift", "log_scale", "log_likelihood"}``: the fitted parameters and the
    mean log p(x) of the samples under the fitted flow, in nats. The check compares
    them with the maximum-likelihood solution in closed form.
    """
    g = _generator(23)
    cases = [
        ("20 skewed samples", 2.0 + 0.5 * torch.empty(20).exponential_(generator=g).double()),
        ("200 normal samples", -1.0 + 3.0 * torch.randn(200, generator=g, dtype=D64)),
    ]
    keys = ("shift", "log_scale", "log_likelihood")
    for name, x in cases:
        got = _numbers(_call(fn, x.clone()), keys, "your result")
        mean, std = x.mean().item(), x.std(correction=0).item()
        best = -0.5 * math.log(2 * math.pi * std**2) - 0.5  # the maximum, in closed form
        shift, log_scale, reported = got["shift"], got["log_scale"], got["log_likelihood"]
        at_answer = _affine_log_likelihood(x, shift, log_scale)
        if log_scale > math.log(std) + 3:
            raise ExerciseError(
                f"for {name} your log_scale is {log_scale:.4g}, far above what the data's "
                "spread suggests: the scale keeps growing while it is fitted. The likelihood "
                "has a −log_scale term (the log-determinant of the flow); check that your "
                "loss has it, with the right sign."
            )
        if _near(log_scale, std) or _near(log_scale, std**2):
            raise ExerciseError(
                f"for {name} your log_scale equals the data's standard deviation or "
                "variance; return its logarithm."
            )
        if abs(reported - at_answer) > 1e-6 * (1 + abs(at_answer)):
            diff = reported - at_answer
            if abs(diff - log_scale) < 1e-6 or abs(diff + log_scale) < 1e-6:
                hint = " The difference is log_scale: count the log-determinant, −log_scale."
            elif abs(abs(diff) - 0.5 * math.log(2 * math.pi)) < 1e-6:
                hint = " The difference is ½ log 2π: keep the normal density's constant."
            elif abs(reported - at_answer * len(x)) < 1e-6 * (1 + abs(at_answer) * len(x)):
                hint = " That is the sum over the samples; return the mean."
            else:
                hint = " log p(x) = log N(z; 0, 1) − log_scale, averaged over the samples."
            raise ExerciseError(
                f"for {name} your log_likelihood is {reported:.6g}, but your shift and "
                f"log_scale give {at_answer:.6g}.{hint}"
            )
        if abs(shift - mean) <= 1e-3 * std and abs(log_scale - math.log(std)) <= 1e-3:
            continue
        unbiased = math.log(x.std(correction=1).item())
        if abs(shift - mean) <= 1e-3 * std and abs(log_scale - unbiased) <= 1e-4:
            hint = (
                " Your scale is the unbiased estimate (n − 1 in the variance); maximum "
                "likelihood divides by n."
            )
        elif best - at_answer > 1e-3:
            hint = (
                f" Your parameters' mean log-likelihood is {at_answer:.5g}, lower than the "
                "best an affine flow reaches on these samples by more than 0.001 nats: "
                "fit longer, or with a step size that suits both parameters."
            )
        else:
            hint = (
                " The maximum is close in log-likelihood, but the parameters are not at it; "
                "fit until the gradient is (nearly) zero."
            )
        raise ExerciseError(
            f"for {name} your fit is shift {shift:.5g}, log_scale {log_scale:.5g}: not the "
            f"maximum-likelihood fit to 0.001.{hint}"
        )
    print(
        "check_affine_flow_fit: correct; an affine flow fits the mean and the spread, "
        "and no more: its density is always a normal one."
    )


COUPLING_LAYERS = (2, 8)


def check_coupling_layers(fn: Callable, seed: int = 0) -> None:
    """Check ``fn(x_train, x_test, n_layers, seed)``: held-out NLL of a RealNVP that deep.

    ``fn`` trains a RealNVP with ``n_layers`` coupling layers on the 2-D rows
    ``x_train`` (1000, 2), seeded by ``seed``, and returns the mean negative
    log-likelihood of ``x_test`` in nats per point. The check runs 2 and 8 layers on a
    ring of eight Gaussians drawn from ``seed`` (scaled to about unit variance) and judges
    what it measured: the deeper flow is better, and far better than the best Gaussian.
    """
    from companion.data import make_ring

    def ring(n: int, s: int) -> torch.Tensor:
        return (make_ring(n, sigma=0.05, seed=s)[0] / 0.72).float()

    x_train, x_test = ring(1000, seed), ring(1000, seed + 1000)
    centred = x_train.double() - x_train.double().mean(0)
    gaussian = torch.distributions.MultivariateNormal(
        x_train.double().mean(0), centred.T @ centred / len(centred)
    )
    gaussian_nll = -gaussian.log_prob(x_test.double()).mean().item()
    nll, shown = _nll_sweep(
        fn,
        x_train,
        x_test,
        COUPLING_LAYERS,
        seed,
        setting="n_layers",
        every="depth",
        unit="layers",
        per="point",
        passes="as its number of coupling layers",
        diverged="the training diverged.",
        negative=(
            "the negative log-likelihood of these points is positive for any reasonable "
            "flow; return −log p, not log p."
        ),
    )
    if not nll[COUPLING_LAYERS[0]] > nll[COUPLING_LAYERS[1]] + 0.1:
        raise ExerciseError(
            f"your held-out NLLs are {shown}: the deeper flow is not better by 0.1 nats. "
            "With 2 layers each coordinate is transformed once, by an affine map whose "
            "scale and shift depend on the other; a correct run with 8 layers separates "
            "the eight modes much better. Train a new flow for each depth and score "
            "x_test with the model in eval mode."
        )
    if nll[COUPLING_LAYERS[-1]] > gaussian_nll - 1.0:
        raise ExerciseError(
            f"your held-out NLLs are {shown}, but the best Gaussian scores "
            f"{gaussian_nll:.3f}: a correct run with 8 layers is better by 1 nat at "
            "least. Train longer, or with a larger learning rate, on x_train."
        )
    print(
        f"check_coupling_layers: correct; your held-out NLLs are {shown}, against "
        f"{gaussian_nll:.3f} for the best Gaussian."
    )

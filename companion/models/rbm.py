"""Restricted Boltzmann machines trained by contrastive divergence (Hinton, 2002).

A Bernoulli RBM has binary visible units v ∈ {0, 1}^V, binary hidden units
h ∈ {0, 1}^H and the energy

    E(v, h) = -bᵀv - cᵀh - vᵀW h,        p(v, h) = exp(-E(v, h)) / Z.

No connections inside a layer, so both conditionals factorise:
p(h_j = 1 | v) = s(c_j + (vᵀW)_j) and p(v_i = 1 | h) = s(b_i + (W h)_i), with s
the logistic sigmoid. Summing h out gives the free energy

    F(v) = -bᵀv - Σ_j softplus(c_j + (vᵀW)_j),     p(v) = exp(-F(v)) / Z,

and the gradient of the log-likelihood of a data set

    -∂ mean log p(v) / ∂θ = mean_data ∂F(v)/∂θ - E_model ∂F(v)/∂θ.

The second term needs samples of the model; CD-k takes them from k steps of
block Gibbs sampling started at the data batch. :meth:`RBM.loss` returns the
surrogate mean F(v) - mean F(ṽ) with ṽ the (detached) Gibbs samples, whose
gradient is exactly that estimate, so the one Trainer trains an RBM as it
trains every other model.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from companion._validation import check_model_input, check_positive_int, values_unchecked

MAX_ENUMERATED_UNITS = 24  # log Z by enumeration of 2^min(V, H) states, in chunks


def _bernoulli(p: torch.Tensor) -> torch.Tensor:
    """A 0/1 draw with probabilities p (same shape); NaN probabilities give 0, not an error."""
    return (torch.rand_like(p) < p).to(p.dtype)


def _binary_states(n: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Every vector of {0, 1}^n, (2^n, n), in binary counting order."""
    bits = torch.arange(2**n, device=device).unsqueeze(1) >> torch.arange(
        n - 1, -1, -1, device=device
    )
    return (bits & 1).to(dtype)


class RBM(nn.Module):
    """A Bernoulli-Bernoulli restricted Boltzmann machine.

    Parameters
    ----------
    n_visible, n_hidden : int
        V and H.
    k : int
        Gibbs steps of contrastive divergence (CD-k) in :meth:`loss`.
    init_std : float
        Standard deviation of the initial weights (Hinton's guide: 0.01).

    Parameters of the module: ``weight`` W (V, H), ``visible_bias`` b (V,),
    ``hidden_bias`` c (H,). ``forward(v)`` is p(h = 1 | v), (B, H): the
    features a stack of RBMs passes up.
    """

    def __init__(self, n_visible: int, n_hidden: int, *, k: int = 1, init_std: float = 0.01):
        super().__init__()
        self.n_visible = check_positive_int(n_visible, name="n_visible")
        self.n_hidden = check_positive_int(n_hidden, name="n_hidden")
        self.k = check_positive_int(k, name="k", hint=" Gibbs steps (CD-1 is the usual choice)")
        if not init_std >= 0:
            raise ValueError(f"init_std={init_std} must be >= 0; 0.01 is the usual choice.")
        self.weight = nn.Parameter(init_std * torch.randn(self.n_visible, self.n_hidden))
        self.visible_bias = nn.Parameter(torch.zeros(self.n_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(self.n_hidden))

    # ------------------------------------------------------------ the model
    def _rows(self, v) -> torch.Tensor:
        return check_model_input(v, self.n_visible, name="RBM", like=self.weight)

    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) for paired rows v (B, V) and h (B, H): (B,)."""
        return -(v @ self.visible_bias) - (h @ self.hidden_bias) - ((v @ self.weight) * h).sum(1)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log Σ_h exp(-E(v, h)) = -bᵀv - Σ_j softplus(c_j + (vᵀW)_j): (B,)."""
        v = self._rows(v)
        return -(v @ self.visible_bias) - F.softplus(v @ self.weight + self.hidden_bias).sum(1)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h_j = 1 | v) = s(c + vᵀW): (B, V) -> (B, H)."""
        return torch.sigmoid(v @ self.weight + self.hidden_bias)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """p(v_i = 1 | h) = s(b + W h): (B, H) -> (B, V)."""
        return torch.sigmoid(h @ self.weight.T + self.visible_bias)

    def gibbs(self, v: torch.Tensor, steps: int = 1) -> torch.Tensor:
        """``steps`` rounds of block Gibbs sampling h ~ p(h | v), v ~ p(v | h); returns v (B, V)."""
        steps = check_positive_int(steps, name="steps", minimum=0)
        for _ in range(steps):
            v = _bernoulli(self.visible_probs(_bernoulli(self.hidden_probs(v))))
        return v

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """The hidden units' probabilities p(h = 1 | v), (B, H)."""
        return self.hidden_probs(self._rows(v))

    def reconstruct(self, v: torch.Tensor) -> torch.Tensor:
        """Mean-field reconstruction p(v = 1 | h = p(h = 1 | v)), (B, V)."""
        return self.visible_probs(self.hidden_probs(self._rows(v)))

    # ------------------------------------------------------------ training
    def loss(self, batch) -> dict[str, torch.Tensor]:
        """CD-k surrogate: its gradient is the CD-k estimate of -∇ mean log p(v).

        ``loss`` = mean F(v) - mean F(ṽ), ṽ = k Gibbs steps from v (no gradient
        through the sampling). Its value is not a log-likelihood; watch
        ``reconstruction`` (cross-entropy of :meth:`reconstruct`, summed over
        pixels) or, for small models, :meth:`log_likelihood`.
        """
        v = self._rows(batch[0] if isinstance(batch, (tuple, list)) else batch)
        with torch.no_grad():
            negative = self.gibbs(v, self.k)
        cd = self.free_energy(v).mean() - self.free_energy(negative).mean()
        with torch.no_grad():
            logits = self.hidden_probs(v) @ self.weight.T + self.visible_bias
            rec = F.binary_cross_entropy_with_logits(logits, v, reduction="none").sum(1).mean()
        return {"loss": cd, "reconstruction": rec}

    def check_input(self, x) -> None:
        """Check data as :meth:`loss` does (called once per fit by the Trainer)."""
        with values_unchecked():
            self._rows(x[0] if isinstance(x, (tuple, list)) else x)

    @torch.no_grad()
    def init_visible_bias(self, data: torch.Tensor, eps: float = 1e-3) -> RBM:
        """Set b to the log-odds of each pixel's mean in ``data`` (B, V): with W = 0 the RBM
        is then the independent-pixel model fitted to the data (Hinton's guide, §8)."""
        p = self._rows(data).mean(0).clamp(eps, 1 - eps)
        self.visible_bias.copy_(torch.log(p) - torch.log1p(-p))
        return self

    # ------------------------------------------------------------ exact quantities
    @torch.no_grad()
    def log_partition(self, chunk: int = 4096) -> torch.Tensor:
        """log Z, exact, by summing over every state of the smaller layer (≤ 24 units).

        Summing over h: log Z = logsumexp_h [cᵀh + Σ_i softplus(b_i + (W h)_i)];
        over v, symmetrically. A scalar tensor in float64.
        """
        small = min(self.n_visible, self.n_hidden)
        if small > MAX_ENUMERATED_UNITS:
            raise ValueError(
                f"log_partition enumerates 2^{small} states of the smaller layer; that is more "
                f"than 2^{MAX_ENUMERATED_UNITS}. Use an RBM with at most {MAX_ENUMERATED_UNITS} "
                "hidden (or visible) units, or estimate Z by annealed importance sampling."
            )
        W, b, c = (t.double() for t in (self.weight, self.visible_bias, self.hidden_bias))
        if self.n_hidden > self.n_visible:  # sum over v instead, with the roles swapped
            W, b, c = W.T, c, b
        states = _binary_states(W.shape[1], torch.float64, W.device)  # (2^m, m)
        parts = [
            s @ c + F.softplus(s @ W.T + b).sum(1) for s in states.split(chunk)
        ]  # (chunk,) each
        return torch.logsumexp(torch.cat(parts), 0)

    @torch.no_grad()
    def log_likelihood(self, v: torch.Tensor) -> torch.Tensor:
        """log p(v) = -F(v) - log Z, exact (see :meth:`log_partition`), in nats: (B,) float64."""
        v = self._rows(v)
        return -self.free_energy(v).double() - self.log_partition()

    @torch.no_grad()
    def sample(
        self, n: int, steps: int = 1000, *, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        """n visible samples after ``steps`` Gibbs steps from ``start`` (default: uniform noise)."""
        n = check_positive_int(n, name="n")
        if start is None:
            start = _bernoulli(torch.full((n, self.n_visible), 0.5, dtype=self.weight.dtype,
                                          device=self.weight.device))  # fmt: skip
        return self.gibbs(self._rows(start), steps)

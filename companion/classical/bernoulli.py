"""Mixtures of Bernoulli distributions (for binary images), fitted by EM."""

from __future__ import annotations

from typing import Any

import torch

from companion._validation import to_input_kind
from companion.classical._em import EMMixture


class BernoulliMixture(EMMixture):
    """A mixture of K products of independent Bernoullis.

    p(x) = Σ_k π_k Π_j μ_kj^x_j (1 - μ_kj)^(1 - x_j), for x in {0, 1}^d.

    Parameters
    ----------
    n_components : int
    alpha : float
        Strength of a symmetric Beta(alpha, alpha) prior on every μ_kj (MAP
        estimate; alpha = 1 is plain maximum likelihood). With the clamp to
        [eps, 1 - eps], it keeps log μ and log(1 - μ) finite when a pixel is
        always 0 or 1 within a component.
    eps : float
        Clamp for the pixel probabilities.
    binarize : float or None
        Threshold that makes the data binary, as in scikit-learn's
        ``BernoulliNB``: entries above it count as 1, the others as 0, in fit
        and afterwards. ``None`` (the default) requires entries in {0, 1}.
    tol, max_iter, n_init, init, random_state : as in GaussianMixture
    dtype : str, torch.dtype or None ("float64" by default; None keeps the data's float dtype)

    Fitted attributes: weights_ (K,), means_ (K, d) pixel probabilities,
    converged_, n_iter_, lower_bound_, lower_bound_history_, n_features_in_,
    feature_names_in_ (for a DataFrame).

    scikit-learn's ``check_estimator`` passes every check on
    ``BernoulliMixture(binarize=0.0)``. With ``binarize=None`` (the default)
    the checks that fit on real-valued data fail by design, since such data
    are refused; ``tests/test_sklearn_checks.py`` pins them.
    """

    input_domain = "binary"  # fit accepts 0/1 entries only (unless binarize is set)

    def __sklearn_tags__(self) -> Any:
        """As for any estimator, but only non-negative entries when ``binarize`` is None."""
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self.binarize is None
        return tags

    def __init__(
        self,
        n_components: int = 1,
        *,
        alpha: float = 1.0,
        eps: float = 1e-6,
        binarize: float | None = None,
        tol: float = 1e-3,
        max_iter: int = 100,
        init: str = "kmeans",
        n_init: int = 1,
        random_state: int | None = None,
        dtype: str | torch.dtype | None = "float64",
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.eps = eps
        self.binarize = binarize
        self.tol = tol
        self.max_iter = max_iter
        self.init = init
        self.n_init = n_init
        self.random_state = random_state
        self.dtype = dtype

    def _check_values(self, X: torch.Tensor, name: str, *, fitting: bool) -> torch.Tensor:
        if self.binarize is not None:
            return (X > self.binarize).to(X.dtype)
        negative = X < 0
        outside = negative if bool(negative.any()) else (X != 0) & (X != 1)
        if bool(outside.any()):
            row, col = torch.nonzero(outside)[0].tolist()
            value = X[row, col].item()
            who = "BernoulliMixture"
            if value < 0:  # scikit-learn's checks look for "Negative values in data"
                who = "Negative values in data passed to BernoulliMixture, which"
            raise ValueError(
                f"{who} needs binary data (0 or 1), but {name}[{row}, {col}] = "
                f"{value:.4g}; binarise it first, e.g. companion.data.binarize(x) "
                "or (x > 0.5), or pass binarize=0.5."
            )
        if fitting and not self.alpha >= 1:
            raise ValueError(f"alpha={self.alpha} must be >= 1 (1 = maximum likelihood).")
        return X

    def _initialize(self, X: torch.Tensor, resp: torch.Tensor, generator) -> None:
        self._m_step(X, resp)

    def _m_step(self, X: torch.Tensor, resp: torch.Tensor) -> None:
        self._m_step_statistics(self._statistics(X, resp), X.dtype)

    def _statistics(self, X: torch.Tensor, resp: torch.Tensor) -> list[torch.Tensor]:
        """The M-step's sums over the rows: Σ r (K,) and Σ r x (K, d)."""
        return [resp.sum(0), resp.T @ X]

    def _m_step_statistics(self, sums: list[torch.Tensor], dtype: torch.dtype) -> None:
        """The M-step from the sums, parameters in ``dtype`` (the data's)."""
        counts, moments = sums
        nk = counts + 10 * torch.finfo(dtype).eps  # (K,)
        prior = self.alpha - 1
        means = (moments + prior) / (nk[:, None] + 2 * prior)  # (K, d)
        self._means = means.clamp(self.eps, 1 - self.eps).to(dtype)
        self._weights = (nk / nk.sum()).to(dtype)

    def _log_prob_components(self, X: torch.Tensor) -> torch.Tensor:
        log_on, log_off = torch.log(self._means), torch.log1p(-self._means)  # (K, d)
        return X @ (log_on - log_off).T + log_off.sum(1)  # (n, K)

    def _n_parameters(self) -> int:
        return self.n_components * self.n_features_in_ + self.n_components - 1

    def _get_parameters(self):
        return (self._weights, self._means)

    def _set_parameters(self, params) -> None:
        self._weights, self._means = params

    def _publish(self) -> None:
        self.weights_ = to_input_kind(self._weights, self._kind)
        self.means_ = to_input_kind(self._means, self._kind)

    def sample(self, n_samples: int = 1, *, seed: int | None = None):
        """Draw binary vectors: returns X (n, d) in {0, 1} and their components (n,)."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        components = self._sample_components(n_samples, generator)
        probabilities = self._means.cpu()[components]
        X = torch.bernoulli(probabilities, generator=generator).to(self._means.device)
        return to_input_kind(X, self._kind), to_input_kind(components, self._kind)

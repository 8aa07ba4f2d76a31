"""Parzen-window log-likelihood estimates of samples (and why they mislead)."""

from __future__ import annotations

import math
from typing import Any

import torch

from companion._validation import (
    check_array,
    check_is_fitted,
    check_n_features,
    check_positive_int,
    resolve_dtype,
    to_input_kind,
    validate_data,
)
from companion.classical._base import ParamsMixin


# ------------------------------------------------------------------ Parzen
class ParzenWindow(ParamsMixin):
    """Gaussian kernel density estimate on samples, σ chosen on held-out data.

    p̂(x) = (1/n) Σ_i N(x; s_i, σ² I), scored in nats per example. ``fit(X)``
    keeps the samples X (n, d) and picks σ from ``sigmas``: the one that maximises
    the mean log p̂ of ``X_val`` when given (the protocol of the GAN papers:
    validation images), else the mean leave-one-out log p̂ of the samples
    themselves (each sample scored by the others).

    Why it misleads (Theis, van den Oord & Bethge, 2016): the estimate
    converges so slowly with the number of samples that, even for 6×6
    image patches and a model whose likelihood is known, millions of
    samples leave it far from the true log-likelihood, let alone 10,000
    samples of 784 pixels; it rewards sample sets that sit close to the
    data without being a good density (on MNIST, 10,000 k-means centroids
    of the training set outscore the samples of published deep generative
    models); and the ranking of models it gives need not follow their real
    likelihoods. We keep it to show this, not to rank models. It emits no
    warning: the caveat belongs in the text that shows the number.

    Parameters
    ----------
    sigmas : sequence of float, optional
        Candidate bandwidths; by default 20 values from 0.01 to 1, log-spaced.
    chunk : int
        Rows of X scored at a time (memory ~ chunk × n_samples).
    dtype : str, numpy or torch float dtype, or None
        The float type of the computation and of the fitted samples and scores;
        "float64" by default (a log-sum-exp over hundreds of dimensions), None keeps
        the input's.

    Fitted attributes: sigma_, val_log_likelihoods_ (one per candidate),
    samples_ (n, d), n_features_in_ (and
    feature_names_in_ for a DataFrame). Scores come back as the input's kind
    (NumPy in, NumPy out; a tensor in, a tensor on its device out).
    """

    estimator_type = "density_estimator"

    def __init__(self, sigmas: Any = None, *, chunk: int = 512, dtype: Any = "float64"):
        self.sigmas = sigmas
        self.chunk = chunk
        self.dtype = dtype

    def fit(self, X: Any, y: Any = None, *, X_val: Any = None) -> ParzenWindow:
        """Keep the samples X (n, d) and choose σ on ``X_val`` (m, d) or by leave-one-out."""
        # y is ignored, as scikit-learn's unsupervised estimators ignore it (Pipelines pass
        # it); but a matrix there is validation data passed the old positional way.
        if y is not None and getattr(y, "ndim", 1) == 2:
            raise TypeError(
                "ParzenWindow.fit(X, y) got a matrix as y; the window is unsupervised and "
                "ignores y. Pass validation data by name: fit(samples, X_val=validation)."
            )
        sigmas = torch.logspace(-2, 0, 20) if self.sigmas is None else self.sigmas
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
        if sigmas.numel() == 0 or not bool((sigmas > 0).all()):
            raise ValueError(f"sigmas={self.sigmas!r} must be positive numbers, e.g. [0.1, 0.2].")
        check_positive_int(self.chunk, name="chunk")
        S, kind = validate_data(self, X, reset=True, min_samples=2, dtype=resolve_dtype(self.dtype))
        self._samples = S  # (n, d) tensor, the kernel centres
        if X_val is None:
            scores = [float(self._score(S, float(s), leave_one_out=True).mean()) for s in sigmas]
        else:
            V, _ = check_array(X_val, name="X_val", dtype=S.dtype)
            check_n_features(V, self.n_features_in_, estimator=self, name="X_val")
            V = V.to(S.device)
            scores = [float(self._score(V, float(s)).mean()) for s in sigmas]
        self.sigma_ = float(sigmas[max(range(len(scores)), key=scores.__getitem__)])
        self.samples_ = to_input_kind(S, kind)
        self.val_log_likelihoods_ = to_input_kind(torch.tensor(scores, dtype=S.dtype), kind)
        return self

    def _score(self, X: torch.Tensor, sigma: float, *, leave_one_out: bool = False) -> torch.Tensor:
        """log p̂ of each row of X (m,); with ``leave_one_out`` X is the samples and row i
        is scored by the other n - 1."""
        n, d = self._samples.shape
        kept = n - 1 if leave_one_out else n
        const = math.log(kept) + 0.5 * d * math.log(2 * math.pi * sigma**2)
        parts, start = [], 0
        for xb in X.split(self.chunk):
            sq = torch.cdist(xb, self._samples).pow(2)  # (chunk, n)
            if leave_one_out:
                rows = torch.arange(xb.shape[0], device=sq.device)
                sq[rows, rows + start] = math.inf  # a sample does not score itself
            parts.append(torch.logsumexp(-0.5 * sq / sigma**2, dim=1) - const)
            start += xb.shape[0]
        return torch.cat(parts)

    def score_samples(self, X: Any) -> Any:
        """log p̂(x) per row of X (m, d), nats, shape (m,)."""
        check_is_fitted(self, "sigma_", method="score_samples")
        X, kind = validate_data(self, X, reset=False, dtype=self._samples.dtype)
        return to_input_kind(self._score(X.to(self._samples.device), self.sigma_), kind)

    def score(self, X: Any, y: None = None) -> float:
        """Mean log p̂ over the rows of X, nats."""
        check_is_fitted(self, "sigma_", method="score")
        X, _ = validate_data(self, X, reset=False, dtype=self._samples.dtype)
        return float(self._score(X.to(self._samples.device), self.sigma_).mean())

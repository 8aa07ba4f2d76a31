"""Evaluating generative models: likelihoods, Parzen windows, memorisation, precision and recall.

* :func:`nll_nats`, :func:`bits_per_dim`: exact test likelihoods of models
  with ``log_prob`` (MADE, PixelCNN); :func:`vae_nll`: the importance-weighted
  bound of a VAE (:func:`companion.vae.importance_weighted_nll`).
* :class:`ParzenWindow`: a Gaussian kernel density on samples, the
  likelihood proxy of early GAN papers, kept to show why it misleads.
* :func:`memorisation_check`: are samples closer to training images than
  test images are?
* :func:`precision_recall`: k-NN manifold precision and recall
  (Kynkäänniemi et al., 2019).

All distances are Euclidean, computed in chunks with ``torch.cdist``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from companion._validation import check_array, check_is_fitted, check_positive_int
from companion.vae import importance_weighted_nll


class Estimate(NamedTuple):
    """A mean over test examples and its standard error (std / √n)."""

    mean: float
    stderr: float


def _mean_stderr(values: torch.Tensor) -> Estimate:
    n = values.numel()
    stderr = float(values.std() / math.sqrt(n)) if n > 1 else float("nan")
    return Estimate(float(values.mean()), stderr)


def nats_to_bits_per_dim(nats: float | torch.Tensor, dim: int) -> float | torch.Tensor:
    """Negative log-likelihood per example in nats -> bits per dimension: nats / (dim · ln 2)."""
    return nats / (check_positive_int(dim, name="dim") * math.log(2))


@torch.no_grad()
def log_likelihoods(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """``model.log_prob`` over ``x`` in batches, in eval mode, on the model's device: (N,) nats."""
    if not hasattr(model, "log_prob"):
        raise TypeError(
            f"{type(model).__name__} has no log_prob(x); use vae_nll for a VAE, or a model "
            "with an exact likelihood such as MADE or PixelCNN."
        )
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a non-empty tensor (N, ...), got {shape}.")
    batch_size = check_positive_int(batch_size, name="batch_size")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        parts = [model.log_prob(xb.to(device)).cpu().double() for xb in x.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def nll_nats(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500) -> Estimate:
    """Mean negative log-likelihood of ``x`` (N, ...), nats per example, and its standard error."""
    return _mean_stderr(-log_likelihoods(model, x, batch_size=batch_size))


def bits_per_dim(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500) -> Estimate:
    """:func:`nll_nats` divided by (pixels per example · ln 2)."""
    nll = nll_nats(model, x, batch_size=batch_size)
    dim = math.prod(x.shape[1:])
    return Estimate(nats_to_bits_per_dim(nll.mean, dim), nats_to_bits_per_dim(nll.stderr, dim))


def vae_nll(model: nn.Module, x: torch.Tensor, *, k: int = 1000, **kwargs: Any) -> Estimate:
    """The importance-weighted NLL bound of a VAE (k samples), mean and standard error, nats.

    An upper bound on the NLL in expectation, so a VAE compared with an exact
    likelihood is, if anything, flattered less than it deserves. Keyword
    arguments go to :func:`companion.vae.importance_weighted_nll`.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        values = importance_weighted_nll(model, x.to(device), k=k, **kwargs)
    finally:
        model.train(was_training)
    return _mean_stderr(values.cpu().double())


# ------------------------------------------------------------------ distances
def nearest_distances(
    queries: torch.Tensor, reference: torch.Tensor, k: int = 1, *, chunk: int = 1024
) -> torch.Tensor:
    """Distances from every query (n, d) to its k nearest rows of ``reference`` (m, d): (n, k).

    Sorted ascending. Queries are taken ``chunk`` rows at a time, so memory
    stays about chunk × m.
    """
    if k > reference.shape[0]:
        raise ValueError(f"k={k} exceeds the {reference.shape[0]} reference points; lower k.")
    parts = [
        torch.cdist(q, reference).topk(k, dim=1, largest=False).values for q in queries.split(chunk)
    ]
    return torch.cat(parts)


def _pair(a: Any, b: Any, names: tuple[str, str], min_samples: int = 1):
    A, _ = check_array(a, name=names[0], min_samples=min_samples, dtype=torch.float64)
    B, _ = check_array(b, name=names[1], min_samples=min_samples, dtype=torch.float64)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"{names[0]} has {A.shape[1]} features but {names[1]} has {B.shape[1]}; flatten "
            "images the same way (x.reshape(len(x), -1)) or use the same feature extractor."
        )
    return A, B.to(A.device)


# ------------------------------------------------------------------ Parzen
class ParzenWindow:
    """Gaussian kernel density estimate on samples, σ chosen on validation data.

    p̂(x) = (1/n) Σ_i N(x; s_i, σ² I), scored in nats per example. ``fit``
    keeps the samples (n, d) and picks σ from ``sigmas`` to maximise the mean
    log p̂ of ``X_val``.

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

    Fitted attributes: sigma_, val_log_likelihoods_ (one per candidate),
    samples_ (n, d) float64, n_features_in_.
    """

    def __init__(self, sigmas: Any = None, *, chunk: int = 512):
        self.sigmas = sigmas
        self.chunk = chunk

    def fit(self, samples: Any, X_val: Any) -> ParzenWindow:
        S, V = _pair(samples, X_val, ("samples", "X_val"))
        sigmas = torch.logspace(-2, 0, 20) if self.sigmas is None else self.sigmas
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
        if sigmas.numel() == 0 or not bool((sigmas > 0).all()):
            raise ValueError(f"sigmas={self.sigmas!r} must be positive numbers, e.g. [0.1, 0.2].")
        self.samples_, self.n_features_in_ = S, S.shape[1]
        scores = [float(self._score(V, float(s)).mean()) for s in sigmas]
        self.val_log_likelihoods_ = torch.tensor(scores, dtype=torch.float64)
        self.sigma_ = float(sigmas[int(self.val_log_likelihoods_.argmax())])
        return self

    def _score(self, X: torch.Tensor, sigma: float) -> torch.Tensor:
        n, d = self.samples_.shape
        const = math.log(n) + 0.5 * d * math.log(2 * math.pi * sigma**2)
        parts = []
        for xb in X.split(check_positive_int(self.chunk, name="chunk")):
            sq = torch.cdist(xb, self.samples_).pow(2)  # (chunk, n)
            parts.append(torch.logsumexp(-0.5 * sq / sigma**2, dim=1) - const)
        return torch.cat(parts)

    def score_samples(self, X: Any) -> torch.Tensor:
        """log p̂(x) per row of X (m, d), nats, float64 tensor (m,)."""
        check_is_fitted(self, "sigma_", method="score_samples")
        X, _ = check_array(X, name="X", dtype=torch.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but the samples have {self.n_features_in_}; "
                "flatten images the same way."
            )
        return self._score(X.to(self.samples_.device), self.sigma_)

    def score(self, X: Any) -> float:
        """Mean log p̂ over the rows of X, nats."""
        return float(self.score_samples(X).mean())


# ------------------------------------------------------------ memorisation
@dataclass(frozen=True)
class MemorisationReport:
    """Result of :func:`memorisation_check`.

    generated_to_train : (n_gen,) distance of every sample to its nearest training example.
    test_to_train : (n_test,) the same for held-out real examples, the reference.
    threshold : the ``quantile`` of test_to_train.
    suspicious_fraction : share of samples nearer to the training set than
        ``threshold``; about ``quantile`` for a model that does not copy,
        near 1 for one that does.
    """

    generated_to_train: torch.Tensor
    test_to_train: torch.Tensor
    threshold: float
    suspicious_fraction: float


def memorisation_check(
    generated: Any, train: Any, test: Any, *, quantile: float = 0.01, chunk: int = 1024
) -> MemorisationReport:
    """Compare each sample's nearest-training-example distance with the test set's.

    generated (n_gen, d), train (n_train, d), test (n_test, d): flattened
    images or features. A model that reproduces training images puts its
    samples much nearer to the training set than fresh real images are.
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile={quantile} must lie strictly between 0 and 1, e.g. 0.01.")
    G, T = _pair(generated, train, ("generated", "train"))
    _, R = _pair(generated, test, ("generated", "test"))
    gen = nearest_distances(G, T, chunk=chunk)[:, 0]
    ref = nearest_distances(R, T, chunk=chunk)[:, 0]
    threshold = float(torch.quantile(ref, quantile))
    return MemorisationReport(
        gen.cpu(), ref.cpu(), threshold, float((gen < threshold).double().mean())
    )


# ------------------------------------------------------- precision / recall
def _manifold_coverage(points: torch.Tensor, support: torch.Tensor, k: int, chunk: int) -> float:
    """Share of ``points`` in some ball B(s, distance from s to its k-th neighbour in support)."""
    radii = nearest_distances(support, support, k + 1, chunk=chunk)[:, k]  # (m,), self excluded
    inside = [(torch.cdist(p, support) <= radii[None, :]).any(1) for p in points.split(chunk)]
    return float(torch.cat(inside).double().mean())


def precision_recall(
    real: Any, generated: Any, *, k: int = 3, chunk: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall of Kynkäänniemi et al. (2019), both in [0, 1].

    The real manifold is the union of balls around every real feature vector
    with radius the distance to its k-th nearest real neighbour; precision is
    the share of generated samples inside it (are samples realistic?).
    Recall swaps the roles (is every kind of real example generated?).
    real (n, d), generated (m, d), both with more than k rows.
    """
    k = check_positive_int(k, name="k")
    R, G = _pair(real, generated, ("real", "generated"), min_samples=k + 1)
    return _manifold_coverage(G, R, k, chunk), _manifold_coverage(R, G, k, chunk)

"""Semantic hashing: binary codes from an autoencoder and retrieval by Hamming distance.

:class:`HashingAutoencoder` learns codes that are (nearly) binary, either by
adding strong noise before a sigmoid code layer during training, as in
Salakhutdinov & Hinton's semantic hashing, or with a straight-through
threshold; :func:`binary_codes` reads the bits off and
:func:`hamming_retrieval` looks them up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from companion.models.autoencoders import Autoencoder, _inputs, reconstruction_loss

BINARIZERS = ("noise", "straight_through")


class HashingAutoencoder(Autoencoder):
    """An autoencoder whose sigmoid code is pushed to be binary: one bit per code unit.

    dims : layer widths from the input to the code, e.g. [784, 256, 32]; the
        last width is the number of bits.
    activation : between hidden layers ("relu", "sigmoid", "tanh", "linear").
    binarize : how training makes the code binary.

        - ``"noise"``: during training add N(0, noise_std²) to the code's
          pre-activation before the sigmoid. Values near 0.5 then reach the
          decoder drowned in noise, so the encoder learns to push its
          pre-activations far from zero, where the sigmoid saturates
          (Salakhutdinov & Hinton, 2009). In eval mode no noise is added.
        - ``"straight_through"``: the decoder sees the sigmoid thresholded at
          0.5, exactly 0 or 1; the backward pass uses the sigmoid's gradient
          as if there were no threshold.
    noise_std : standard deviation of the training noise for ``"noise"``
        (4.0 in Salakhutdinov & Hinton); unused by ``"straight_through"``.
    balanced : centre each code pre-activation on its mean over the batch in
        the training loss, and on a running mean of those batch means
        everywhere else, as batch normalisation does without rescaling. Every
        bit then splits the data roughly in half instead of settling at 0 or
        1 for all inputs, a "dead" bit that carries no information.
    tied, output : as for :class:`~companion.models.autoencoders.Autoencoder`.

    ``encode(x)`` returns the deterministic sigmoid code in [0, 1], (B, bits),
    which :func:`binary_codes` thresholds; ``forward(x)`` decodes the code
    the decoder is trained on (exactly binary for ``"straight_through"``).
    """

    def __init__(
        self,
        dims: Sequence[int],
        activation: str = "relu",
        *,
        binarize: str = "noise",
        noise_std: float = 4.0,
        balanced: bool = True,
        tied: bool = False,
        output: str = "bernoulli",
    ):
        if binarize not in BINARIZERS:
            raise ValueError(
                f"binarize={binarize!r} is not one of {BINARIZERS}; use 'noise' (noise before "
                "the sigmoid) or 'straight_through' (a threshold with the sigmoid's gradient)."
            )
        if (
            isinstance(noise_std, bool)
            or not isinstance(noise_std, (int, float))
            or not math.isfinite(noise_std)
            or noise_std < 0
        ):
            raise ValueError(
                f"noise_std={noise_std!r} must be a finite number >= 0, e.g. noise_std=4.0."
            )
        super().__init__(dims, activation, tied=tied, output=output, code_activation="linear")
        self.binarize, self.noise_std, self.balanced = binarize, float(noise_std), bool(balanced)
        # running mean of the code pre-activations, used outside training batches
        self.register_buffer("code_mean", torch.zeros(self.dims[-1]))
        self.momentum = 0.1

    @property
    def n_bits(self) -> int:
        """Length of the code."""
        return self.dims[-1]

    def _encode(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self._logits(h))  # (B, bits) in [0, 1]

    def _logits(self, h: torch.Tensor, *, batch_mean: bool = False) -> torch.Tensor:
        """Code pre-activations (B, bits) of checked inputs (B, D), centred if balanced."""
        logits = super()._encode(h)  # the code layer is linear in Autoencoder
        if not self.balanced:
            return logits
        if batch_mean:
            mean = logits.mean(0)  # (bits,), gradients flow through it as in batch norm
            with torch.no_grad():
                self.code_mean.lerp_(mean.detach(), self.momentum)
            return logits - mean
        return logits - self.code_mean

    def code_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) or images -> the code's pre-activation before the sigmoid, (B, bits)."""
        return self._logits(self._rows(x))

    def _decoder_code(self, logits: torch.Tensor) -> torch.Tensor:
        """The code the decoder sees, from pre-activations (B, bits)."""
        if self.binarize == "noise":
            if self.training and self.noise_std > 0:
                logits = logits + self.noise_std * torch.randn_like(logits)
            return torch.sigmoid(logits)
        soft = torch.sigmoid(logits)
        hard = (soft > 0.5).to(soft.dtype)
        return soft + (hard - soft).detach()  # value: hard; gradient: the sigmoid's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions in data space, (B, D), decoded from the code training uses."""
        return self.decode(self._decoder_code(self.code_logits(x)))

    def loss(self, batch) -> dict[str, torch.Tensor]:
        """Reconstruction loss of the (noisy or thresholded) code, averaged over the batch.

        ``"undecided"`` is the share of deterministic code values in (0.1, 0.9):
        it falls towards 0 as the code becomes binary.
        """
        x = self._rows(_inputs(batch))
        logits = self._logits(x, batch_mean=self.training)  # (B, bits)
        rec = reconstruction_loss(self.decode_logits(self._decoder_code(logits)), x, self.output)
        rec = rec.mean()
        # sigmoid(a) lies in (0.1, 0.9) exactly when |a| < log 9
        undecided = (logits.detach().abs() < math.log(9.0)).float().mean()
        return {"loss": rec, "reconstruction": rec.detach(), "undecided": undecided}


def binary_codes(model, x: torch.Tensor, *, threshold: float = 0.5) -> torch.Tensor:
    """Bits (n, k) of uint8: the model's sigmoid code units thresholded at ``threshold``.

    The model's code layer should be a sigmoid trained to saturate (for
    example with noise added before the sigmoid during training, as in
    Salakhutdinov & Hinton's semantic hashing).
    """
    with torch.no_grad():
        code = model.encode(x)
    if code.min() < 0 or code.max() > 1:
        raise ValueError(
            "binary_codes needs code values in [0, 1] (a sigmoid code layer); "
            f"got [{code.min().item():.3g}, {code.max().item():.3g}]."
        )
    return (code > threshold).to(torch.uint8)


def hamming_distances(codes_a: torch.Tensor, codes_b: torch.Tensor) -> torch.Tensor:
    """Number of differing bits between every row of codes_a (n, k) and codes_b (m, k): (n, m)."""
    if codes_a.shape[1] != codes_b.shape[1]:
        raise ValueError(
            f"codes have {codes_a.shape[1]} and {codes_b.shape[1]} bits; "
            "compare codes of one length."
        )
    a, b = codes_a.float(), codes_b.float()
    # bits differ where exactly one is 1: |a - b| summed = a(1-b) + (1-a)b
    return (a @ (1 - b).T + (1 - a) @ b.T).round().to(torch.int64)


def hamming_retrieval(
    codes_db: torch.Tensor, codes_query: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k database items nearest to each query in Hamming distance.

    Returns indices (m, k) and distances (m, k); ties go to the lower index.
    """
    if not 1 <= k <= codes_db.shape[0]:
        raise ValueError(f"k={k} must be between 1 and the database size {codes_db.shape[0]}.")
    distances = hamming_distances(codes_query, codes_db)  # (m, n)
    n = codes_db.shape[0]
    # a stable ordering: distance first, then index
    keys = distances * n + torch.arange(n, device=distances.device)
    order = keys.topk(k, dim=1, largest=False).indices
    return order, distances.gather(1, order)


def precision_at_k(neighbour_labels: torch.Tensor, query_labels: torch.Tensor) -> torch.Tensor:
    """Precision of retrieval at every cut-off: (k,) from neighbours' labels (m, k).

    Entry j - 1 is the share of the first j retrieved items that have their
    query's label (query_labels, (m,)), averaged over the m queries.
    """
    if neighbour_labels.ndim != 2 or neighbour_labels.shape[0] != query_labels.shape[0]:
        raise ValueError(
            f"neighbour_labels {tuple(neighbour_labels.shape)} needs one row per query "
            f"label ({query_labels.shape[0]}); pass labels_db[index] from hamming_retrieval."
        )
    hits = (neighbour_labels == query_labels[:, None]).double()  # (m, k)
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float64, device=hits.device)
    return (hits.cumsum(1) / ranks).mean(0)


def precision_recall_by_radius(
    codes_db: torch.Tensor,
    labels_db: torch.Tensor,
    codes_query: torch.Tensor,
    labels_query: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Precision and recall of returning every database item within Hamming radius r.

    Returns radii (bits + 1,) = 0, 1, ..., bits, and precision and recall of
    the same length. An item is relevant when it has the query's label.
    Recall is averaged over all queries; precision over the queries that
    retrieve at least one item (NaN at a radius where none does).
    """
    if labels_db.shape[0] != codes_db.shape[0] or labels_query.shape[0] != codes_query.shape[0]:
        raise ValueError(
            f"got {labels_db.shape[0]} labels for {codes_db.shape[0]} database codes and "
            f"{labels_query.shape[0]} for {codes_query.shape[0]} queries; pass one label per code."
        )
    distances = hamming_distances(codes_query, codes_db)  # (m, n)
    relevant = labels_query[:, None] == labels_db[None, :]  # (m, n)
    n_bits = codes_db.shape[1]
    radii = torch.arange(n_bits + 1)
    # counts per exact distance, then cumulative sums give "within radius r"
    at = torch.zeros(distances.shape[0], n_bits + 1, dtype=torch.float64)
    retrieved = at.scatter_add(1, distances.cpu(), torch.ones_like(at[:, :1]).expand_as(distances))
    good = at.scatter_add(1, distances.cpu(), relevant.cpu().double())
    retrieved, good = retrieved.cumsum(1), good.cumsum(1)  # (m, bits + 1)
    recall = (good / relevant.sum(1, keepdim=True).cpu().clamp(min=1)).mean(0)
    answered = retrieved > 0
    precision = (good / retrieved.clamp(min=1)).where(answered, 0).sum(0) / answered.sum(0)
    return radii, precision, recall

"""Variational autoencoders: a module that knows its negative ELBO.

The generative model is p(z) = N(0, I), p(x | z) given by a decoder; the
encoder gives a diagonal Gaussian q(z | x) = N(μ(x), diag σ²(x)) (Kingma &
Welling, 2014). For every x,

    log p(x) ≥ ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) ‖ p(z)),

and the trainer minimises the negative ELBO averaged over a batch. All
per-example quantities are in nats, summed over pixels and latent dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from companion._validation import (
    batch_inputs,
    check_model_input,
    check_positive_int,
    values_already_checked,
    values_checked,
    values_unchecked,
)
from companion.models.layers import ConvDecoder, ConvEncoder, input_width, mlp_decoder, mlp_encoder
from companion.models.likelihoods import (
    LOG_2PI,
    bernoulli_log_prob,
    continuous_bernoulli_log_prob,
    continuous_bernoulli_mean,
    continuous_bernoulli_sample,
    gaussian_kl,
    gaussian_log_prob,
    standard_normal_log_prob,
)

LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I): a draw from N(μ, σ²) that gradients pass through."""
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


class VAE(nn.Module):
    """A variational autoencoder with a diagonal Gaussian posterior.

    Parameters
    ----------
    encoder : nn.Module
        Rows (B, D) -> (B, 2·latent_dim): the posterior means, then the log-variances.
    decoder : nn.Module
        Codes (B, latent_dim) -> (B, D): logits of p(x | z) for the (continuous)
        Bernoulli likelihoods, means for the Gaussian one; (B, 2·D), the means
        then the log-variances, with ``decoder_variance=True``.
    latent_dim : int
    likelihood : {"bernoulli", "continuous_bernoulli", "gaussian"}
        ``"bernoulli"``: binary pixels (grey values in [0, 1] are accepted as
        cross-entropy targets, but then the "likelihood" is not a density).
        ``"continuous_bernoulli"``: a normalised density on [0, 1] for grey
        images (Loaiza-Ganem & Cunningham, 2019). ``"gaussian"``: N(g(z), σ² I)
        with one σ² shared by all pixels, see ``obs_logvar``.
    beta : float
        Weight of the KL term (β-VAE, Higgins et al., 2017); 1 gives the ELBO.
    free_bits : float
        Nats per latent dimension below which the KL is not penalised: the
        loss uses Σ_j max(free_bits, mean over the batch of KL_j) (Kingma et
        al., 2016). 0 turns it off.
    obs_logvar : float, optional
        Gaussian likelihood only. ``None`` learns one global log σ² (a
        parameter starting at 0, σ = 1); a float fixes it (a buffer). A
        per-pixel learned variance can shrink without bound on pixels that are
        nearly constant, such as the borders of Fashion-MNIST; a global one
        cannot, and it sets the balance between reconstruction and KL.
    decoder_variance : bool
        Gaussian likelihood only: the decoder outputs a log-variance for every
        pixel next to its mean, so p(x | z) = N(g(z), diag σ²(z)) (no
        ``obs_logvar``). On data with pixels that are nearly constant the
        variances can shrink without bound; ``min_obs_logvar`` bounds them.
    min_obs_logvar : float, optional
        With ``decoder_variance``: a soft floor m on the decoder's log-variances,
        log σ² = m + softplus(h - m) for a decoder output h. For images
        dequantised with uniform noise of width 1/256 the noise alone has
        variance 1/(12·256²), so m = log(1/(12·256²)) costs little.
    input_dim : int, optional
        Width D of the inputs; by default read from the encoder's
        ``input_dim`` attribute or its first ``nn.Linear``.

    Attributes
    ----------
    kl_weight : float
        Multiplies β·KL in the loss; 1 unless a :class:`~companion.training.callbacks.KLWarmup`
        sets it.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        *,
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        free_bits: float = 0.0,
        obs_logvar: float | None = None,
        decoder_variance: bool = False,
        min_obs_logvar: float | None = None,
        input_dim: int | None = None,
    ):
        super().__init__()
        self.latent_dim = check_positive_int(latent_dim, name="latent_dim")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood={likelihood!r} is not one of {LIKELIHOODS}.")
        if not beta >= 0:
            raise ValueError(f"beta={beta} must be >= 0; beta=1 gives the ELBO.")
        if not free_bits >= 0:
            raise ValueError(f"free_bits={free_bits} must be >= 0 nats per dimension.")
        if obs_logvar is not None and likelihood != "gaussian":
            raise ValueError(
                f"obs_logvar applies to likelihood='gaussian' only, not {likelihood!r}; drop it."
            )
        if decoder_variance and likelihood != "gaussian":
            raise ValueError(
                f"decoder_variance applies to likelihood='gaussian' only, not {likelihood!r}."
            )
        if decoder_variance and obs_logvar is not None:
            raise ValueError(
                f"obs_logvar={obs_logvar} and decoder_variance=True both set the variance of "
                "p(x | z); drop obs_logvar (the decoder outputs the log-variances)."
            )
        if min_obs_logvar is not None and not decoder_variance:
            raise ValueError(
                f"min_obs_logvar={min_obs_logvar} bounds the decoder's log-variances; it needs "
                "decoder_variance=True."
            )
        if min_obs_logvar is not None and not math.isfinite(min_obs_logvar):
            raise ValueError(f"min_obs_logvar={min_obs_logvar} must be finite, or None.")
        self.decoder_variance = bool(decoder_variance)
        self.min_obs_logvar = None if min_obs_logvar is None else float(min_obs_logvar)
        self.encoder, self.decoder = encoder, decoder
        self.likelihood, self.beta, self.free_bits = likelihood, float(beta), float(free_bits)
        self.input_dim = input_dim if input_dim is not None else input_width(encoder, "input_dim")
        self.kl_weight = 1.0
        if likelihood == "gaussian" and not self.decoder_variance:
            if obs_logvar is None:
                self.obs_logvar = nn.Parameter(torch.zeros(()))
            else:
                self.register_buffer("obs_logvar", torch.tensor(float(obs_logvar)))

    @classmethod
    def mlp(
        cls, input_dim: int = 784, hidden: Sequence[int] = (400,), latent_dim: int = 20,
        *, activation: str = "relu", **kwargs,
    ) -> VAE:  # fmt: skip
        """Fully connected VAE: input_dim-hidden…-latent_dim and the mirror image back
        (to 2·input_dim outputs with ``decoder_variance=True``)."""
        encoder = mlp_encoder(input_dim, hidden, latent_dim, activation)
        out = 2 * input_dim if kwargs.get("decoder_variance") else input_dim
        decoder = mlp_decoder(latent_dim, tuple(reversed(hidden)), out, activation)
        return cls(encoder, decoder, latent_dim, input_dim=input_dim, **kwargs)

    @classmethod
    def conv(cls, latent_dim: int = 20, channels: tuple[int, int] = (32, 64), **kwargs) -> VAE:
        """Convolutional VAE for 28×28 single-channel images (rows of 784 or (B, 1, 28, 28))."""
        return cls(ConvEncoder(latent_dim, channels), ConvDecoder(latent_dim, channels),
                   latent_dim, input_dim=784, **kwargs)  # fmt: skip

    # ------------------------------------------------------------ checks
    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten images to rows (B, D); check width, dtype, device, finiteness and range.

        One scan of the values (the range's, which NaN and inf fail too), skipped
        inside ``values_checked()``.
        """
        like, name = next(self.parameters(), None), type(self).__name__
        if self.likelihood == "gaussian":
            return check_model_input(x, self.input_dim, name=name, like=like)
        scan = not values_already_checked()
        with values_checked():
            x = check_model_input(x, self.input_dim, name=name, like=like)
        if x.numel() == 0 or not scan:
            return x
        lo, hi = (float(v) for v in torch.aminmax(x))
        if not (lo >= 0 and hi <= 1):  # true for NaN as well
            check_model_input(x, self.input_dim, name=name, like=like)  # NaN or inf: say so
            raise ValueError(
                f"likelihood={self.likelihood!r} needs inputs in [0, 1], got values in "
                f"[{lo:.3g}, {hi:.3g}]; scale the data with to_float, or use "
                "likelihood='gaussian' for unbounded data."
            )
        return x

    def check_input(self, x) -> None:
        """Check data as :meth:`loss` does, its scans of values (finite, in [0, 1] for a
        Bernoulli likelihood) included even inside ``values_checked()``: (B, D), images,
        or a tuple whose first entry is one. The Trainer calls it once per fit."""
        with values_unchecked():
            self._rows(batch_inputs(x))

    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows (B, D) -> μ, log σ², each (B, latent_dim)."""
        h = self.encoder(x)
        d = self.latent_dim
        if h.ndim != 2 or h.shape[1] != 2 * d:
            raise ValueError(
                f"the encoder returned shape {tuple(h.shape)}, but a VAE with latent_dim={d} "
                f"needs ({x.shape[0]}, {2 * d}): the means, then the log-variances; make the "
                f"encoder's last layer output {2 * d} features."
            )
        return h[:, :d], h[:, d:]

    def _decode_params(self, z: torch.Tensor, width: int | None = None) -> torch.Tensor:
        """Codes (N, latent_dim) -> decoder output (N, D), or (N, 2·D) with
        ``decoder_variance``, checked against the input width."""
        out = self.decoder(z)
        width = width if width is not None else self.input_dim
        factor = 2 if self.decoder_variance else 1
        if out.ndim != 2 or (width is not None and out.shape[1] != factor * width):
            what = " (the means, then the log-variances)" if self.decoder_variance else ""
            raise ValueError(
                f"the decoder returned shape {tuple(out.shape)} for codes of shape "
                f"{tuple(z.shape)}, but the inputs have {width} features; make the decoder "
                f"output (batch, {factor * width if width is not None else width}){what}."
            )
        return out

    def _gaussian_params(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder output -> mean (..., D) and log σ² of p(x | z) (Gaussian likelihood)."""
        if not self.decoder_variance:
            return params, self.obs_logvar
        mean, h = params.chunk(2, dim=-1)
        if self.min_obs_logvar is None:
            return mean, h
        return mean, self.min_obs_logvar + nn.functional.softplus(h - self.min_obs_logvar)

    # ------------------------------------------------------------ model
    def log_likelihood(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x | z) summed over pixels, from the decoder output (..., D), or
        (..., 2·D) with ``decoder_variance``: x (..., D) -> (...)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(params, x).sum(-1)
        if self.likelihood == "continuous_bernoulli":
            return continuous_bernoulli_log_prob(params, x).sum(-1)
        return gaussian_log_prob(x, *self._gaussian_params(params)).sum(-1)

    def _mean(self, params: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            return torch.sigmoid(params)
        if self.likelihood == "continuous_bernoulli":
            return continuous_bernoulli_mean(params)  # not λ: the mean is pulled towards ½
        return self._gaussian_params(params)[0]

    def _draw(self, params: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            return torch.bernoulli(torch.sigmoid(params))
        if self.likelihood == "continuous_bernoulli":
            return continuous_bernoulli_sample(params)
        mean, logvar = self._gaussian_params(params)
        return mean + torch.randn_like(mean) * (0.5 * logvar).exp()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, D) or images -> (μ, log σ²) of q(z | x), each (B, latent_dim)."""
        return self._posterior(self._rows(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, latent_dim) -> the mean of p(x | z), (B, D)."""
        return self._mean(self._decode_params(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of p(x | z) at one reparameterised draw z ~ q(z | x), (B, D)."""
        return self.decode(reparameterize(*self.encode(x)))

    def loss(self, batch) -> dict[str, torch.Tensor]:
        """Negative ELBO and its parts, per example and averaged over the batch.

        ``loss`` = reconstruction + β · kl_weight · KL (with free bits, the KL
        term is Σ_j max(free_bits, batch mean of KL_j)); ``negative_elbo`` is
        always reconstruction + KL, the number to compare across settings.
        """
        x = self._rows(batch[0] if isinstance(batch, (tuple, list)) else batch)  # (B, D)
        mu, logvar = self._posterior(x)  # (B, d), (B, d)
        z = reparameterize(mu, logvar)
        rec = -self.log_likelihood(x, self._decode_params(z, x.shape[1])).mean()
        kl = gaussian_kl(mu, logvar)  # (B, d)
        kl_mean = kl.sum(1).mean()
        if self.free_bits > 0:
            kl_term = kl.mean(0).clamp_min(self.free_bits).sum()
        else:
            kl_term = kl_mean
        return {
            "loss": rec + (self.beta * self.kl_weight) * kl_term,
            "reconstruction": rec.detach(),
            "kl": kl_mean.detach(),
            "negative_elbo": (rec + kl_mean).detach(),
        }

    def elbo(self, x: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
        """ELBO per example, (B,): the reconstruction term averaged over ``n_samples``
        draws from q(z | x), minus the KL in closed form."""
        n_samples = check_positive_int(n_samples, name="n_samples")
        x = self._rows(x)
        mu, logvar = self._posterior(x)
        _, _, log_px_z = self._draw_codes(x, mu, logvar, n_samples)  # (S, B)
        return log_px_z.mean(0) - gaussian_kl(mu, logvar).sum(1)

    def log_importance_weights(self, x: torch.Tensor, n_samples: int) -> torch.Tensor:
        """log p(x, z_s) - log q(z_s | x) for z_s ~ q(z | x), shape (n_samples, B).

        Their mean is a one-sample-per-draw ELBO; their log-mean-exp is the
        importance weighted bound of Burda et al. (2016).
        """
        x = self._rows(x)
        return self._log_weights(x, *self._posterior(x), check_positive_int(n_samples, name="k"))

    def _draw_codes(self, x, mu, logvar, n: int):
        """n draws z = μ + σε from q(z | x) and log p(x | z): ε, z (n, B, d) and (n, B)."""
        eps = torch.randn((n, *mu.shape), dtype=mu.dtype, device=mu.device)  # (n, B, d)
        z = mu + eps * (0.5 * logvar).exp()
        params = self._decode_params(z.reshape(-1, self.latent_dim), x.shape[1])
        log_px_z = self.log_likelihood(x.expand(n, *x.shape), params.view(n, x.shape[0], -1))
        return eps, z, log_px_z

    def _log_weights(self, x, mu, logvar, n: int) -> torch.Tensor:
        eps, z, log_px_z = self._draw_codes(x, mu, logvar, n)
        log_pz = standard_normal_log_prob(z).sum(-1)
        log_qz = -0.5 * (LOG_2PI + logvar + eps.pow(2)).sum(-1)  # log N(z; μ, σ²) at z = μ + σε
        return log_px_z + log_pz - log_qz

    @torch.no_grad()
    def sample(self, n: int, *, mean: bool = True) -> torch.Tensor:
        """n new examples, (n, D): z ~ N(0, I), then the mean of p(x | z)
        (``mean=True``, what one usually shows) or a draw from it."""
        n = check_positive_int(n, name="n")
        ref = next(self.parameters())
        z = torch.randn(n, self.latent_dim, dtype=ref.dtype, device=ref.device)
        params = self._decode_params(z)
        return self._mean(params) if mean else self._draw(params)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, *, sample: bool = False) -> torch.Tensor:
        """Mean of p(x | z) at z = μ(x) (or at a draw z ~ q(z | x) with ``sample=True``), (B, D)."""
        x = self._rows(x)
        mu, logvar = self._posterior(x)
        z = reparameterize(mu, logvar) if sample else mu
        return self._mean(self._decode_params(z, x.shape[1]))


@torch.no_grad()
def importance_weighted_nll(
    model: VAE, x: torch.Tensor, k: int = 1000, *, chunk: int = 100, batch_size: int = 500
) -> torch.Tensor:
    """−log p(x) estimated with k importance samples from q(z | x), per example (B,), nats.

    L_k = log (1/k) Σ_s p(x, z_s) / q(z_s | x) (Burda et al., 2016) is a lower
    bound on log p(x) in expectation; L_1 is the ELBO and E[L_k] rises with k
    towards log p(x), so −L_k over-estimates the NLL less and less. The k
    draws are taken ``chunk`` at a time and combined with a running
    log-sum-exp, and examples ``batch_size`` at a time, so memory stays
    about chunk × batch_size × D whatever k is.
    """
    k = check_positive_int(k, name="k")
    chunk = check_positive_int(chunk, name="chunk")
    batch_size = check_positive_int(batch_size, name="batch_size")
    x = model._rows(x)
    nll = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size]
        mu, logvar = model._posterior(xb)
        total = None
        for done in range(0, k, chunk):
            part = torch.logsumexp(model._log_weights(xb, mu, logvar, min(chunk, k - done)), 0)
            total = part if total is None else torch.logaddexp(total, part)
        nll.append(math.log(k) - total)
    return torch.cat(nll) if nll else x.new_zeros(0)

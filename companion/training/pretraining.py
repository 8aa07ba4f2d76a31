"""Greedy layer-wise pretraining of a deep autoencoder (Hinton & Salakhutdinov, 2006).

Each layer is first trained alone on the codes of the layers below it, either
as a one-hidden-layer autoencoder or as a restricted Boltzmann machine trained
by contrastive divergence (the original recipe; a stack of RBMs is a deep
belief net); the trained weights then initialise a deep
:class:`~companion.models.autoencoders.Autoencoder` (encoder W_i, decoder W_iᵀ),
which is fine-tuned end to end by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from companion.models.autoencoders import Autoencoder
from companion.models.rbm import RBM
from companion.training.trainer import Trainer

LAYERS = ("autoencoder", "rbm")


def greedy_pretrain(
    dims: Sequence[int],
    data: torch.Tensor,
    *,
    layer: str = "autoencoder",
    activation: str = "sigmoid",
    output: str = "bernoulli",
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    cd_k: int = 1,
    device: str = "auto",
    seed: int = 0,
    progress: bool = False,
) -> tuple[Autoencoder, list[dict]]:
    """Pretrain ``dims`` layer by layer on ``data`` (n, dims[0]); return the deep AE and histories.

    ``layer="autoencoder"``: the first layer reconstructs the data with
    ``output``; deeper layers reconstruct the codes below them with a sigmoid
    output and cross-entropy when ``activation="sigmoid"`` (the codes are then
    in (0, 1), and the deep decoder applies the same sigmoid), and with
    squared error otherwise. The deep code layer is linear.

    ``layer="rbm"``: each layer is an :class:`~companion.models.rbm.RBM` trained
    by CD-``cd_k`` on the hidden probabilities p(h = 1 | v) of the RBM below
    (the first on ``data``, binary or grey values in [0, 1]); encoder i gets
    (Wᵢᵀ, cᵢ), decoder i gets (Wᵢ, bᵢ), so the deep encoder computes the
    stacked hidden probabilities and the decoder the stacked visible ones. This
    needs ``activation="sigmoid"`` and ``output="bernoulli"``, and the deep code
    layer is a sigmoid (the top RBM's hidden probabilities).
    """
    if layer not in LAYERS:
        raise ValueError(f"layer={layer!r} is not one of {LAYERS}.")
    if layer == "rbm" and (activation != "sigmoid" or output != "bernoulli"):
        raise ValueError(
            f"layer='rbm' needs activation='sigmoid' and output='bernoulli' (the RBM's "
            f"conditionals), got activation={activation!r}, output={output!r}; pass those, "
            "or use layer='autoencoder'."
        )
    dims = [int(d) for d in dims]
    histories = []
    inputs = data
    stages = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        last = i == len(dims) - 2
        if layer == "rbm":
            stage = RBM(d_in, d_out, k=cd_k)
        else:
            stage = Autoencoder(
                [d_in, d_out],
                activation,
                output=output
                if i == 0
                else ("bernoulli" if activation == "sigmoid" else "gaussian"),
                code_activation="linear" if last else activation,
            )
        trainer = Trainer(
            stage, epochs=epochs, batch_size=batch_size, lr=lr, device=device, seed=seed + i,
            progress=progress,
        )  # fmt: skip
        histories.append(trainer.fit(inputs))
        stages.append(stage)
        with torch.no_grad():
            inputs = (stage if layer == "rbm" else stage.encode)(inputs.to(trainer.device)).cpu()
    code_activation = "sigmoid" if layer == "rbm" else "linear"
    deep = Autoencoder(dims, activation, output=output, code_activation=code_activation)
    with torch.no_grad():
        for i, stage in enumerate(stages):
            enc, dec = deep.encoder_layers[i], deep.decoder_layers[i]
            if layer == "rbm":
                pairs = [(enc.weight, stage.weight.T), (enc.bias, stage.hidden_bias),
                         (dec.weight, stage.weight), (dec.bias, stage.visible_bias)]  # fmt: skip
            else:
                pairs = [(enc.weight, stage.encoder_layers[0].weight),
                         (enc.bias, stage.encoder_layers[0].bias),
                         (dec.weight, stage.decoder_layers[0].weight),
                         (dec.bias, stage.decoder_layers[0].bias)]  # fmt: skip
            for target, source in pairs:
                target.copy_(source)
    return deep, histories

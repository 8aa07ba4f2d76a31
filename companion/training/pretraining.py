"""Greedy layer-wise pretraining of a deep autoencoder (Hinton & Salakhutdinov, 2006).

Each layer is first trained as a one-hidden-layer autoencoder on the codes of
the layers below it; the trained weights then initialise a deep
:class:`~companion.models.autoencoders.Autoencoder` (encoder W_i, decoder W_iᵀ),
which is fine-tuned end to end by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from companion.models.autoencoders import Autoencoder
from companion.training.trainer import Trainer


def greedy_pretrain(
    dims: Sequence[int],
    data: torch.Tensor,
    *,
    activation: str = "sigmoid",
    output: str = "bernoulli",
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    device: str = "auto",
    seed: int = 0,
    progress: bool = False,
) -> tuple[Autoencoder, list[dict]]:
    """Pretrain ``dims`` layer by layer on ``data`` (n, dims[0]); return the deep AE and histories.

    The first layer reconstructs the data with ``output``; deeper layers
    reconstruct the codes below them with a sigmoid output and cross-entropy
    when ``activation="sigmoid"`` (the codes are then in (0, 1), and the deep
    decoder applies the same sigmoid), and with squared error otherwise.
    """
    dims = [int(d) for d in dims]
    histories = []
    inputs = data
    stages = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        last = i == len(dims) - 2
        stage = Autoencoder(
            [d_in, d_out],
            activation,
            output=output if i == 0 else ("bernoulli" if activation == "sigmoid" else "gaussian"),
            code_activation="linear" if last else activation,
        )
        trainer = Trainer(
            stage, epochs=epochs, batch_size=batch_size, lr=lr, device=device, seed=seed + i,
            progress=progress,
        )  # fmt: skip
        histories.append(trainer.fit(inputs))
        stages.append(stage)
        with torch.no_grad():
            inputs = stage.encode(inputs.to(trainer.device)).cpu()
    deep = Autoencoder(dims, activation, output=output)
    with torch.no_grad():
        for i, stage in enumerate(stages):
            deep.encoder_layers[i].weight.copy_(stage.encoder_layers[0].weight)
            deep.encoder_layers[i].bias.copy_(stage.encoder_layers[0].bias)
            deep.decoder_layers[i].weight.copy_(stage.decoder_layers[0].weight)
            deep.decoder_layers[i].bias.copy_(stage.decoder_layers[0].bias)
    return deep, histories

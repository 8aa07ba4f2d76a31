"""Runs the trainer's distributed scenarios; started by tests/test_distributed_trainer.py.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py SCENARIO OUT

Each scenario function also runs in one process (the test calls it directly, without
a process group) to give the reference. Rank 0 writes ``OUT/<scenario>.pt``; every
rank writes its final weights to ``OUT/<scenario>.rank<r>.pt``.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from unittest import mock

import torch

from companion import distributed
from companion.models import GAN, VAE, Autoencoder
from companion.models import vae as vae_module
from companion.models.gan_layers import MLPDiscriminator, MLPGenerator
from companion.training import KLWarmup, Trainer

N, BATCH, EPOCHS = 64, 16, 3  # 4 global batches of 16 an epoch: 8 rows per rank


def data(n: int = N, d: int = 12, seed: int = 0) -> torch.Tensor:
    """Binary rows (n, d), the same in every process."""
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


def example_noise(n: int = N, width: int = 4, seed: int = 1) -> torch.Tensor:
    """One fixed standard-normal draw per example, (n, width)."""
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


class ExampleNoiseVAE(VAE):
    """The VAE with each example's noise ε a column of the data instead of a fresh draw.

    A rank's draws depend on how the batch is split, so two runs can only agree
    when the noise belongs to the example: the batch is ``(x, ε)`` (B, D), (B, d).
    """

    def loss(self, batch):
        x, eps = batch
        with mock.patch.object(
            vae_module, "reparameterize", lambda mu, lv: mu + eps * (lv / 2).exp()
        ):
            return super().loss(x)


class ExampleNoiseGAN(GAN):
    """The GAN with each example's two latent draws (discriminator step, generator
    step) a column of the data: the batch is ``(x, z)`` (B, D), (B, 2, latent)."""

    def train_step(self, batch, optimizers):
        x, z = batch
        self._queue = [z[:, 0], z[:, 1]]
        return super().train_step(x, optimizers)

    def _noise(self, n, like):
        return self._queue.pop(0)

    def configure_optimizers(self, lr):
        """SGD, whose steps scale with the gradient (Adam's would hide a wrong scale)."""
        return {
            "discriminator": torch.optim.SGD(self.discriminator.parameters(), lr=lr),
            "generator": torch.optim.SGD(self.generator.parameters(), lr=lr),
        }


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def autoencoder() -> dict:
    torch.manual_seed(0)
    model = Autoencoder([12, 6, 3])
    x = data()
    sgd = functools.partial(torch.optim.SGD, lr=0.05)  # steps scale with the gradient
    trainer = Trainer(model, epochs=EPOCHS, batch_size=BATCH, optimizer=sgd, device="cpu", seed=5)
    history = trainer.fit(x, data(30, seed=9))  # 30 validation rows: uneven shards
    return {"history": history, "weights": _weights(model)}


def vae() -> dict:
    torch.manual_seed(0)
    model = ExampleNoiseVAE.mlp(12, (8,), 2, likelihood="bernoulli")
    trainer = Trainer(
        model, epochs=EPOCHS, batch_size=BATCH, lr=1e-2, device="cpu", seed=5,
        callbacks=[KLWarmup(2)],
    )  # fmt: skip
    history = trainer.fit((data(), example_noise(width=2)))
    return {"history": history, "weights": _weights(model)}


def gan() -> dict:
    torch.manual_seed(0)
    model = ExampleNoiseGAN(MLPGenerator(2, 12, (8,)), MLPDiscriminator(12, (8,)))
    model.frozen = torch.nn.Parameter(torch.zeros(3), requires_grad=False)  # as DDPM's average
    trainer = Trainer(model, epochs=EPOCHS, batch_size=BATCH, lr=0.05, device="cpu", seed=5)
    z = example_noise(width=4).reshape(N, 2, 2)
    history = trainer.fit((data() * 2 - 1, z))
    return {"history": history, "weights": _weights(model)}


def resume(folder: str) -> dict:
    """A real VAE (fresh noise on every rank) 4 epochs straight, and 2 + 2 resumed."""

    def run(epochs: int, path: Path | None) -> Trainer:
        torch.manual_seed(0)
        model = VAE.mlp(12, (8,), 2, likelihood="bernoulli")
        trainer = Trainer(
            model, epochs=epochs, batch_size=BATCH, device="cpu", seed=3, checkpoint_path=path
        )
        trainer.fit(data(), resume=True)
        return trainer

    path = Path(folder) / "resume.ckpt"
    straight = run(4, None)
    run(2, path)
    resumed = run(4, path)
    return {
        "straight": _weights(straight.model),
        "resumed": _weights(resumed.model),
        "straight_history": straight.history,
        "resumed_history": resumed.history,
        "checkpoint": str(path),
    }


def refusals() -> dict:
    """The messages of options the trainer refuses under several processes."""
    messages = {}
    try:
        Trainer(Autoencoder([12, 3]), batch_size=15, device="cpu")
    except ValueError as error:
        messages["batch_size"] = str(error)
    loader = torch.utils.data.DataLoader(data(), batch_size=8)
    try:
        Trainer(Autoencoder([12, 3]), epochs=1, batch_size=16, device="cpu").fit(loader)
    except ValueError as error:
        messages["loader"] = str(error)
    return messages


class FailsOnRank1(torch.nn.Module):
    """Raises in its loss on rank 1 at the 6th batch (epoch 2); rank 0 carries on."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(12))
        self.calls = 0

    def loss(self, batch):
        self.calls += 1
        if distributed.rank() == 1 and self.calls == 6:
            raise RuntimeError("rank 1 ran out of memory (simulated)")
        return {"loss": ((batch * self.w).sum(1) ** 2).mean()}


def crash() -> dict:
    trainer = Trainer(FailsOnRank1(), epochs=50, batch_size=BATCH, device="cpu", progress=False)
    trainer.fit(data())
    return {}


SCENARIOS = {"autoencoder": autoencoder, "vae": vae, "gan": gan, "refusals": refusals,
             "crash": crash}  # fmt: skip


def main() -> None:
    torch.set_num_threads(1)
    names, out = sys.argv[1].split(","), Path(sys.argv[2])
    for name in names:
        result = resume(str(out)) if name == "resume" else SCENARIOS[name]()
        weights = result.get("weights", result.get("resumed"))
        if weights is not None:
            torch.save(weights, out / f"{name}.rank{distributed.rank()}.pt")
        if distributed.is_main_process():
            torch.save(result, out / f"{name}.pt")


if __name__ == "__main__":
    main()

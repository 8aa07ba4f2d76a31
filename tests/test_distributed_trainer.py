"""The trainer under torchrun: 2 CPU processes (gloo) against one process.

Each scenario of tests/ddp_worker.py runs once under
``python -m torch.distributed.run --standalone --nproc_per_node=2`` (one launch for
all of them, a second for the crash) and once here, in this process, without a
process group. With the same global batch and seed the ranks' averaged gradient is
the one-process gradient up to float32 rounding, so histories and weights agree
to float32 tolerance (torch's defaults for float32, rtol 1.3e-6 and atol 1e-5).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from companion.training import Trainer, load_checkpoint
from companion.training.checkpoint import load_model_state
from companion.training.parallel import check_loader_sharded, shard_indices

sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker  # noqa: E402

WORKER = Path(__file__).parent / "ddp_worker.py"
FLOAT32 = {"rtol": 1.3e-6, "atol": 1e-5}  # torch.testing's float32 tolerance


def torchrun(scenarios: str, out: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", str(WORKER), scenarios, str(out)]  # fmt: skip
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    done = torchrun("autoencoder,vae,gan,resume,refusals", out, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["autoencoder", "vae", "gan"])
def test_two_processes_follow_one_process(two_processes, name):
    """Autoencoder (with validation data in uneven shards), VAE (with KL warm-up) and
    GAN (its own train_step: the gradients are averaged by hooks, not by DDP)."""
    one = getattr(ddp_worker, name)()
    two = torch.load(two_processes / f"{name}.pt", weights_only=True)
    assert list(two["history"]) == list(one["history"])
    for key in one["history"]:
        if key != "seconds":
            torch.testing.assert_close(two["history"][key], one["history"][key], **FLOAT32)
    torch.testing.assert_close(two["weights"], one["weights"], **FLOAT32)
    other_rank = torch.load(two_processes / f"{name}.rank1.pt", weights_only=True)
    for key, value in other_rank.items():  # every rank ends with the same model
        assert torch.equal(value, two["weights"][key]), key


def test_resume_under_two_processes_is_bit_identical(two_processes):
    """A VAE drawing fresh noise on each rank, 2 epochs + 2 resumed = 4 straight."""
    result = torch.load(two_processes / "resume.pt", weights_only=True)
    for key, value in result["straight"].items():
        assert torch.equal(result["resumed"][key], value), key
    assert result["resumed_history"]["loss"] == result["straight_history"]["loss"]


def test_a_checkpoint_written_by_two_processes_loads_in_one(two_processes):
    result = torch.load(two_processes / "resume.pt", weights_only=True)
    state = load_checkpoint(two_processes / "resume.ckpt")
    assert state["world_size"] == 2 and len(state["rng_by_rank"]) == 2
    model = ddp_worker.VAE.mlp(12, (8,), 2, likelihood="bernoulli")
    load_model_state(model, state, source="resume.ckpt")
    for key, value in model.state_dict().items():
        assert torch.equal(value, result["resumed"][key]), key
    assert list(two_processes.glob(".resume.ckpt.*.tmp")) == []

    # Resumed by one process: it carries on, warning that the random draws change.
    trainer = Trainer(model, epochs=5, batch_size=16, device="cpu", seed=3, progress=False,
                      checkpoint_path=two_processes / "resume.ckpt")  # fmt: skip
    with pytest.warns(RuntimeWarning, match=r"written by 2 process\(es\) and is resumed by 1"):
        history = trainer.fit(ddp_worker.data(), resume=True)
    assert len(history["loss"]) == 5 and history["loss"][:4] == result["resumed_history"]["loss"]


def test_refusals_under_two_processes(two_processes):
    messages = torch.load(two_processes / "refusals.pt", weights_only=True)
    assert messages["batch_size"].startswith(
        "batch_size=15 cannot be split evenly over 2 processes"
    )
    assert "e.g. 16" in messages["batch_size"]
    assert "DataLoader without a DistributedSampler" in messages["loader"]
    assert "batch_size=global_batch // 2" in messages["loader"]


def test_a_crash_of_one_rank_ends_the_run_with_its_error(tmp_path):
    """Rank 1 raises in epoch 2; rank 0 is waiting for its gradients. The launch ends
    (no hang) with rank 1's error and where it happened."""
    started = time.perf_counter()
    done = torchrun("crash", tmp_path, timeout=120)
    seconds = time.perf_counter() - started
    assert done.returncode != 0
    assert "RuntimeError: rank 1 ran out of memory (simulated)" in done.stderr
    assert "rank 1 of 2 stopped at epoch 2, batch 2" in done.stderr
    assert seconds < 120


def test_shards_are_the_one_process_batches():
    """The ranks' k-th batches together are the one-process k-th batch, for every epoch."""
    n, batch, world = 50, 10, 2
    for epoch in range(3):
        shards = [
            shard_indices(n, seed=4, epoch=epoch, shuffle=True, world_size=world, rank=r)
            for r in range(world)
        ]
        order = torch.randperm(n, generator=torch.Generator().manual_seed(4 * 100_003 + epoch))
        for k in range(n // batch):
            together = torch.cat([s[k * batch // world : (k + 1) * batch // world] for s in shards])
            assert sorted(together.tolist()) == sorted(order[k * batch : (k + 1) * batch].tolist())


def test_a_loader_must_shard_its_data():
    data = torch.zeros(8, 2)
    plain = torch.utils.data.DataLoader(data, batch_size=4)
    with pytest.raises(ValueError, match=r"without a DistributedSampler, so each of the 2"):
        check_loader_sharded(plain, "train_data", 2)
    sampler = torch.utils.data.DistributedSampler(data, num_replicas=3, rank=0)
    three = torch.utils.data.DataLoader(data, batch_size=4, sampler=sampler)
    with pytest.raises(ValueError, match=r"over 3 processes but 2 are running"):
        check_loader_sharded(three, "train_data", 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler = torch.utils.data.DistributedSampler(data, num_replicas=2, rank=0)
        check_loader_sharded(torch.utils.data.DataLoader(data, sampler=sampler), "x", 2)

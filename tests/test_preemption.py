"""Preemption: a training process killed with SIGKILL again and again, resumed each time.

The child trains a tiny model with a checkpoint after every epoch; its checkpoint
writes are slowed (a sleep while the temporary file exists) so that kills land in
them. Some kills come at random moments, some as soon as a temporary file appears.
The run must end with the weights of an uninterrupted run, bit for bit, and no
``.<name>.*.tmp`` left in the folder.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

CHILD = r"""
import sys, time, torch
from torch import nn
import companion.training.checkpoint as checkpoint
from companion.training import Trainer

real_save = torch.save
def slow_save(obj, f, *args, **kwargs):  # the temporary exists during the sleep
    real_save(obj, f, *args, **kwargs)
    if sys.argv[3] == "slow":
        time.sleep(0.05)
checkpoint.torch.save = slow_save

torch.manual_seed(0)
model = nn.Module()
model.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
def loss(batch):
    x, y = batch
    noise = 0.01 * torch.randn_like(x)  # random numbers: the resume must restore them
    return {"loss": ((model.net(x + noise).squeeze(1) - y) ** 2).mean()}
model.loss = loss
g = torch.Generator().manual_seed(1)
x = torch.randn(64, 8, generator=g)
y = x[:, 0] - x[:, 1] ** 2
trainer = Trainer(model, epochs=150, batch_size=16, device="cpu", seed=2, progress=False,
                  checkpoint_path=sys.argv[1])
trainer.fit((x, y), resume=True)
torch.save({k: v for k, v in model.state_dict().items()}, sys.argv[2])
"""


def run_child(folder: Path, out: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", CHILD, str(folder / "run.ckpt"), str(out), mode]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE)


def test_kills_at_random_moments_end_bit_identical_and_leave_no_temporaries(tmp_path):
    straight = tmp_path / "straight"
    straight.mkdir()
    child = run_child(straight, tmp_path / "straight.pt", "fast")
    assert child.wait(timeout=120) == 0, child.stderr.read().decode()[-2000:]

    killed = tmp_path / "killed"
    killed.mkdir()
    rng = random.Random(0)
    kills, stale_seen = 0, 0
    while kills < 8:
        child = run_child(killed, tmp_path / "killed.pt", "slow")
        deadline = time.monotonic() + (rng.uniform(2.0, 4.0) if kills % 2 else 30.0)
        while child.poll() is None and time.monotonic() < deadline:
            if kills % 2 == 0 and list(killed.glob(".run.ckpt.*.tmp")):
                break  # even kills: during a checkpoint write
            time.sleep(0.002)
        if child.poll() is not None:
            break  # finished before this kill
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        kills += 1
        stale_seen += bool(list(killed.glob(".run.ckpt.*.tmp")))
    if child.poll() is None or child.returncode != 0:
        child = run_child(killed, tmp_path / "killed.pt", "slow")
        assert child.wait(timeout=120) == 0, child.stderr.read().decode()[-2000:]
    assert kills >= 4 and stale_seen >= 1, (kills, stale_seen)  # the cleanup was exercised
    expected = torch.load(tmp_path / "straight.pt", weights_only=True)
    got = torch.load(tmp_path / "killed.pt", weights_only=True)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    assert sorted(p.name for p in killed.iterdir()) == ["run.ckpt"]

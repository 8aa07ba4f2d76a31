"""Training: the one :class:`Trainer` every deep model uses, its callbacks and
checkpoints, and greedy layer-wise pretraining."""

from companion.training.callbacks import KLWarmup, StepDecay
from companion.training.checkpoint import load_checkpoint
from companion.training.pretraining import greedy_pretrain
from companion.training.trainer import Trainer

__all__ = ["Trainer", "KLWarmup", "StepDecay", "load_checkpoint", "greedy_pretrain"]

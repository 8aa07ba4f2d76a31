"""Data: Fashion-MNIST and MNIST (found on disk or downloaded, then verified), the IDX
reader, tensor transforms and the synthetic sets of the chapters.

``python -m companion.data fashion-mnist`` fetches and checks a dataset.
"""

from companion.data.datasets import (
    FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    MNIST,
    DatasetSpec,
    DataWarning,
    IdxFile,
    load_fashion_mnist,
    load_idx_dataset,
    load_mnist,
    search_dirs,
)
from companion.data.idx import parse_idx, read_idx
from companion.data.synthetic import (
    grid_centers,
    load_digits,
    make_grid,
    make_noisy_circle,
    make_noisy_sphere,
    make_ring,
    make_s_curve,
    make_swiss_roll,
    make_two_moons,
    ring_centers,
)
from companion.data.transforms import (
    DynamicBinarizer,
    UniformDequantizer,
    binarize,
    dequantize,
    flatten,
    to_float,
    train_val_split,
)

__all__ = [
    "FASHION_MNIST",
    "FASHION_MNIST_CLASSES",
    "MNIST",
    "DataWarning",
    "DatasetSpec",
    "load_fashion_mnist",
    "load_mnist",
    "load_idx_dataset",
    "search_dirs",
    "IdxFile",
    "parse_idx",
    "read_idx",
    "grid_centers",
    "load_digits",
    "make_grid",
    "make_noisy_circle",
    "make_noisy_sphere",
    "make_ring",
    "make_s_curve",
    "make_swiss_roll",
    "make_two_moons",
    "ring_centers",
    "DynamicBinarizer",
    "UniformDequantizer",
    "binarize",
    "dequantize",
    "flatten",
    "to_float",
    "train_val_split",
]

"""Classical estimators with scikit-learn's conventions: PCA, k-means, Gaussian and
Bernoulli mixtures fitted by EM. They run on NumPy arrays or torch tensors (CPU or GPU)
and return the kind they were given."""

from companion.classical.bernoulli import BernoulliMixture
from companion.classical.cluster import ConvergenceWarning, KMeans
from companion.classical.linalg import principal_angles
from companion.classical.mixture import GaussianMixture
from companion.classical.pca import PCA
from companion.classical.sparse_coding import DictionaryLearning, sparse_encode

__all__ = [
    "PCA",
    "KMeans",
    "ConvergenceWarning",
    "GaussianMixture",
    "BernoulliMixture",
    "principal_angles",
    "DictionaryLearning",
    "sparse_encode",
]

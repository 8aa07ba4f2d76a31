"""random_state=None draws its seed from torch's global generator and never re-seeds it."""

import pytest
import torch

from companion import seed_everything
from companion.classical import PCA, GaussianMixture, KMeans
from companion.data import make_swiss_roll
from companion.runtime import resolve_seed

X = torch.randn(300, 40, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "fit",
    [
        lambda: PCA(3, solver="randomized").fit(X).components_,
        lambda: KMeans(4, n_init=1).fit(X).cluster_centers_,
        lambda: GaussianMixture(2, covariance_type="diag", n_init=1).fit(X[:, :3]).means_,
        lambda: make_swiss_roll(n_samples=50, seed=None)[0],
    ],
    ids=["pca", "kmeans", "gmm", "swiss_roll"],
)
def test_seeded_runs_repeat_and_the_global_generator_is_not_reseeded(fit):
    seed_everything(0)
    first = fit()
    after_first = torch.randn(3)
    seed_everything(0)
    second = fit()
    assert torch.equal(torch.as_tensor(first), torch.as_tensor(second))
    assert torch.equal(torch.randn(3), after_first)  # the same stream continued
    assert torch.initial_seed() == 0  # nothing called torch.seed()


def test_resolve_seed_keeps_an_explicit_seed_and_draws_otherwise():
    assert resolve_seed(7) == 7
    torch.manual_seed(3)
    a = resolve_seed(None)
    torch.manual_seed(3)
    assert resolve_seed(None) == a

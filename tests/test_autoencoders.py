"""The autoencoder family: PCA recovery, tied storage, exact penalties, corruption, retrieval."""

from __future__ import annotations

import pytest
import torch

from companion.classical import principal_angles
from companion.models import (
    Autoencoder,
    ContractiveAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
)
from companion.models.autoencoders import kl_sparsity
from companion.models.hashing import binary_codes, hamming_distances, hamming_retrieval
from companion.training import Trainer, greedy_pretrain


def low_rank(n=2000, d=12, rank=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, rank, generator=g))
    scales = torch.tensor([3.0, 2.0, 1.0])[:rank]
    X = (torch.randn(n, rank, generator=g) * scales) @ basis.T + 0.01 * torch.randn(
        n, d, generator=g
    )
    return X, basis


def test_linear_autoencoder_recovers_the_pca_subspace():
    X, _ = low_rank()
    X = X - X.mean(0)
    torch.manual_seed(0)
    model = Autoencoder([12, 3], "linear", output="gaussian")
    Trainer(model, epochs=60, batch_size=100, lr=1e-2, device="cpu", progress=False).fit(X)
    top = torch.linalg.svd(X, full_matrices=False).Vh[:3].T  # (12, 3) PCA directions
    decoder_columns = model.decoder_layers[0].weight.detach()  # (12, 3)
    angles = principal_angles(decoder_columns, top)
    assert angles.max() < 1e-2, angles
    # ... and yet the weights are not the orthonormal eigenvectors themselves
    gram = decoder_columns.T @ decoder_columns
    assert (gram - torch.eye(3)).abs().max() > 1e-2


def test_tied_weights_share_storage():
    model = Autoencoder([20, 8, 3], "relu", tied=True)
    assert not hasattr(model, "decoder_layers")
    names = [name for name, _ in model.named_parameters()]
    assert sum("weight" in n for n in names) == 2  # only the encoder's
    x = torch.rand(5, 20)
    before = model(x)
    with torch.no_grad():
        model.encoder_layers[0].weight.mul_(2.0)  # changing the encoder changes the decoder
    assert not torch.allclose(before, model(x))


def test_contractive_penalty_equals_the_autograd_jacobian_norm():
    torch.manual_seed(0)
    x = torch.rand(4, 10, dtype=torch.float64)
    shallow = ContractiveAutoencoder([10, 5]).double()
    deep = ContractiveAutoencoder([10, 7, 5], activation="tanh").double()
    for model in (shallow, deep):
        exact = torch.stack(
            [
                torch.autograd.functional.jacobian(lambda r, m=model: m.encode(r[None])[0], row)
                .pow(2)
                .sum()
                for row in x
            ]
        )
        torch.testing.assert_close(model.jacobian_penalty(x), exact)
    directions = deep.tangent_directions(x, 2)
    assert directions.shape == (4, 2, 10)
    torch.testing.assert_close(
        directions @ directions.transpose(1, 2), torch.eye(2, dtype=torch.float64).expand(4, 2, 2)
    )


def test_kl_sparsity_matches_the_bernoulli_kl():
    rho_hat = torch.tensor([0.01, 0.05, 0.3, 0.9], dtype=torch.float64)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Bernoulli(probs=torch.full_like(rho_hat, 0.05)),
        torch.distributions.Bernoulli(probs=rho_hat),
    )
    torch.testing.assert_close(kl_sparsity(0.05, rho_hat), expected)
    model = SparseAutoencoder([16, 6], penalty="kl", rho=0.05)
    out = model.loss(torch.rand(32, 16))
    assert set(out) == {"loss", "reconstruction", "sparsity", "mean_activation"}


def test_sparse_kl_penalty_takes_a_sigmoid_code_and_names_a_conflict():
    assert SparseAutoencoder([6, 3], penalty="kl").code_activation == "sigmoid"
    same = SparseAutoencoder([6, 3], penalty="kl", code_activation="sigmoid")
    assert same.code_activation == "sigmoid"
    assert SparseAutoencoder([6, 3], penalty="l1", code_activation="tanh").code_activation == "tanh"
    with pytest.raises(ValueError, match=r"code_activation='relu' conflicts with penalty='kl'.*"
                       r"sigmoid.*penalty='l1'"):  # fmt: skip
        SparseAutoencoder([6, 3], penalty="kl", code_activation="relu")


# Every name of the one table, and what each must compute.
ACTIVATION_FUNCTIONS = {
    "relu": torch.relu,
    "leaky_relu": torch.nn.functional.leaky_relu,
    "elu": torch.nn.functional.elu,
    "gelu": torch.nn.functional.gelu,
    "softplus": torch.nn.functional.softplus,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda t: t,
}


@pytest.mark.parametrize("name", sorted(ACTIVATION_FUNCTIONS))
def test_every_model_takes_every_activation_of_the_one_table(name):
    from companion.models import VAE
    from companion.models.layers import ACTIVATIONS

    assert set(ACTIVATIONS) == set(ACTIVATION_FUNCTIONS)
    torch.manual_seed(0)
    x = torch.randn(5, 6)
    one = Autoencoder([6, 4, 3], name, code_activation=name)
    hidden = ACTIVATION_FUNCTIONS[name](one.encoder_layers[0](x))
    torch.testing.assert_close(
        one.encode(x), ACTIVATION_FUNCTIONS[name](one.encoder_layers[1](hidden))
    )
    vae = VAE.mlp(6, (4,), 2, activation=name)
    first, _, second = vae.encoder
    torch.testing.assert_close(vae.encoder(x), second(ACTIVATION_FUNCTIONS[name](first(x))))


@pytest.mark.parametrize("build", ["autoencoder", "code", "vae", "contractive", "sparse-l1"])
def test_an_unknown_activation_is_refused_with_the_valid_names(build):
    from companion.models import VAE

    makers = {
        "autoencoder": lambda: Autoencoder([4, 2], "swish"),
        "code": lambda: Autoencoder([4, 2], code_activation="swish"),
        "vae": lambda: VAE.mlp(4, (3,), 2, activation="swish"),
        "contractive": lambda: ContractiveAutoencoder([4, 2], "swish"),
        "sparse-l1": lambda: SparseAutoencoder([4, 2], penalty="l1", code_activation="swish"),
    }
    argument = "code_activation" if build in ("code", "sparse-l1") else "activation"
    with pytest.raises(ValueError, match=rf"^{argument}='swish' is not one of \('relu', .*'elu'.*"
                       r"'sigmoid'.*'linear'\)"):  # fmt: skip
        makers[build]()


@pytest.mark.parametrize(
    ("corruption", "level"), [("masking", 0.3), ("salt_pepper", 0.2), ("gaussian", 0.5)]
)
def test_corruption_statistics_match_the_level(corruption, level):
    torch.manual_seed(0)
    model = DenoisingAutoencoder([100, 10], corruption=corruption, level=level)
    x = torch.full((2000, 100), 0.5)
    noisy = model.corrupt(x)
    if corruption == "gaussian":
        assert abs((noisy - x).std().item() - level) < 0.01
    else:
        changed = (noisy != x).float().mean().item()
        assert abs(changed - level) < 0.01
        if corruption == "salt_pepper":
            assert set(noisy[noisy != 0.5].unique().tolist()) == {0.0, 1.0}


def test_hamming_retrieval_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    db = (torch.rand(300, 16, generator=g) > 0.5).to(torch.uint8)
    queries = (torch.rand(20, 16, generator=g) > 0.5).to(torch.uint8)
    brute = torch.tensor([[int((q != d).sum()) for d in db] for q in queries])
    assert torch.equal(hamming_distances(queries, db), brute)
    index, dist = hamming_retrieval(db, queries, k=10)
    for row in range(20):
        expected = sorted(range(300), key=lambda j: (brute[row, j].item(), j))[:10]
        assert index[row].tolist() == expected
        assert dist[row].tolist() == brute[row, expected].tolist()


def test_binary_codes_need_a_sigmoid_code():
    model = Autoencoder([8, 4], code_activation="sigmoid")
    bits = binary_codes(model, torch.rand(5, 8))
    assert bits.dtype == torch.uint8 and set(bits.unique().tolist()) <= {0, 1}
    with pytest.raises(ValueError, match=r"needs code values in \[0, 1\]"):
        binary_codes(Autoencoder([8, 4]), torch.randn(50, 8) * 10)


def test_greedy_pretraining_builds_a_deep_autoencoder_that_fine_tunes(monkeypatch):
    import companion.training.pretraining as pretraining

    stages = []  # the one-layer autoencoders greedy_pretrain trains, in order

    class RecordingTrainer(pretraining.Trainer):
        def __init__(self, model, **kwargs):
            stages.append(model)
            super().__init__(model, **kwargs)

    monkeypatch.setattr(pretraining, "Trainer", RecordingTrainer)
    X = torch.rand(512, 20)
    deep, histories = greedy_pretrain([20, 12, 4], X, epochs=3, device="cpu")
    assert len(histories) == 2 and all(h["loss"][-1] < h["loss"][0] for h in histories)
    # the trained layers' weights end up in the deep model: encoder i and decoder i
    assert [stage.dims for stage in stages] == [[20, 12], [12, 4]]
    for i, stage in enumerate(stages):
        for part in ("encoder", "decoder"):
            ours = getattr(deep, f"{part}_layers")[i]
            trained = getattr(stage, f"{part}_layers")[0]
            assert torch.equal(ours.weight, trained.weight), (part, i)
            assert torch.equal(ours.bias, trained.bias), (part, i)
    with torch.no_grad():  # so the deep code is the stages' codes composed
        torch.testing.assert_close(deep.encode(X), stages[1].encode(stages[0].encode(X)))
    before = deep.loss(X)["loss"].item()
    Trainer(deep, epochs=5, device="cpu", progress=False).fit(X)
    assert deep.loss(X)["loss"].item() < before


def test_bad_input_messages():
    model = Autoencoder([784, 32])
    with pytest.raises(
        ValueError, match=r"expects inputs of shape \(batch, 784\).*got shape \(4, 100\)"
    ):
        model.loss(torch.rand(4, 100))
    x = torch.rand(4, 784)
    x[1, 5] = float("nan")
    with pytest.raises(ValueError, match=r"got NaN or inf in its input"):
        model.loss(x)
    with pytest.raises(
        TypeError, match=r"expects float inputs, got torch.uint8; scale them with to_float"
    ):
        model.encode(torch.zeros(2, 784, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"activation='swish' is not one of"):
        Autoencoder([4, 2], "swish")
    with pytest.raises(ValueError, match=r"corruption='blur' is not"):
        DenoisingAutoencoder([4, 2], corruption="blur")
    assert model.loss(torch.rand(3, 1, 28, 28))["loss"].ndim == 0  # images are flattened


def test_conv_autoencoder_shapes_and_learning():
    from companion.models import ConvAutoencoder

    torch.manual_seed(0)
    model = ConvAutoencoder(code_dim=8)
    x = torch.rand(64, 1, 28, 28).round()
    assert model.encode(x).shape == (64, 8) and model(x).shape == (64, 784)
    history = Trainer(model, epochs=5, batch_size=32, device="cpu", progress=False).fit(x)
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.needs_data
def test_shipped_deep_autoencoder_beats_pca_30():
    """The shipped weights reconstruct test images far better than PCA-30."""
    from companion.classical import PCA
    from companion.data import flatten, load_fashion_mnist, to_float
    from companion.pretrained import load_deep_autoencoder

    model = load_deep_autoencoder()
    assert not model.training and model.dims == [784, 1000, 500, 250, 30]
    x_train = flatten(to_float(load_fashion_mnist("train", download=False)[0][:10000]))
    x_test = flatten(to_float(load_fashion_mnist("test", download=False)[0][:1000]))
    with torch.no_grad():
        ae_error = (x_test - model(x_test)).pow(2).sum(1).mean().item()
    pca = PCA(30).fit(x_train)
    pca_error = (x_test - pca.inverse_transform(pca.transform(x_test))).pow(2).sum(1).mean().item()
    assert ae_error < pca_error, (ae_error, pca_error)

"""A catalogue of bad inputs across the package and what each one must say.

Every case asserts the error (or warning) type and that the message names the
offending value and the fix. The cases are rows of tables, so the count shows
in the test ids: data loading, estimators, models, the trainer and
checkpoints, exercise checks, and the ``python -m companion.data`` command
that ``make data`` runs. Two cases need more than one call and have their own
tests: two processes fetching the same file at once, and a refetch after a
truncated download.
"""

from __future__ import annotations

import dataclasses
import gzip
import multiprocessing
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import companion.exercises as ex
from companion.classical import PCA, BernoulliMixture, GaussianMixture, KMeans
from companion.data import DataWarning, load_idx_dataset, parse_idx, search_dirs
from companion.data.__main__ import main as fetch_main
from companion.errors import CheckpointMismatchError, DataChecksumError, DataNotFoundError
from companion.models import VAE, Autoencoder, DenoisingAutoencoder, HashingAutoencoder
from companion.training import KLWarmup, Trainer, load_checkpoint


@dataclasses.dataclass
class Ctx:
    """What a case may use: the tiny data set, a scratch folder and a local HTTP server."""

    tiny: object
    tmp: Path
    served: Path
    url: str
    monkeypatch: pytest.MonkeyPatch

    def serve(self) -> None:
        """Put the tiny data set on the server and point downloads at it."""
        self.tiny.write(self.served)
        self.monkeypatch.setenv("COMPANION_DATA_URL", self.url)


def X20(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(20, 5))


def read_only_dir(tmp: Path) -> Path:
    """A folder this process cannot write to (root ignores mode bits: then /proc/sys)."""
    folder = tmp / "read-only"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        folder = Path("/proc/sys")
        if not folder.is_dir() or os.access(folder, os.W_OK):
            pytest.skip("no folder here is read-only for this user")
    return folder


# ------------------------------------------------------------------ data files
def truncated_outside_download_folder(ctx: Ctx):
    debian = ctx.tiny.write(ctx.tmp / "debian", gz=False)
    name = ctx.tiny.names["test", "images"]
    (debian / name).write_bytes(ctx.tiny.raw["test", "images"][:-7])  # a copy cut short
    spec = dataclasses.replace(ctx.tiny.spec, debian_dir=debian)
    with pytest.warns(DataWarning, match=rf"{name} has 89 bytes .* \(truncated or corrupted\)"):
        load_idx_dataset(spec, "test", download=False)


def corrupted_outside_download_folder(ctx: Ctx):
    debian = ctx.tiny.write(ctx.tmp / "debian")
    name = ctx.tiny.names["train", "labels"]
    raw = bytearray(ctx.tiny.raw["train", "labels"])
    raw[10] ^= 0x01  # same length, other content: only the checksum tells
    (debian / f"{name}.gz").write_bytes(gzip.compress(bytes(raw)))
    spec = dataclasses.replace(ctx.tiny.spec, debian_dir=debian)
    with pytest.warns(DataWarning, match=rf"{name}.gz has SHA-256 .* Skipping it"):
        load_idx_dataset(spec, "train", download=False)


def corrupted_download(ctx: Ctx):
    ctx.serve()
    name = ctx.tiny.names["test", "labels"]
    raw = bytearray(ctx.tiny.raw["test", "labels"])
    raw[-1] ^= 0x01
    (ctx.served / f"{name}.gz").write_bytes(gzip.compress(bytes(raw)))
    load_idx_dataset(ctx.tiny.spec, "test")


def html_page_instead_of_gzip(ctx: Ctx):
    ctx.serve()
    name = ctx.tiny.names["test", "images"]
    (ctx.served / f"{name}.gz").write_text("<html>Access denied</html>")
    try:
        load_idx_dataset(ctx.tiny.spec, "test")
    finally:
        assert not (search_dirs(ctx.tiny.spec)[0] / f"{name}.gz").exists()  # not kept


def missing_on_server(ctx: Ctx):
    ctx.serve()
    (ctx.served / f"{ctx.tiny.names['train', 'images']}.gz").unlink()
    load_idx_dataset(ctx.tiny.spec, "train")


def read_only_root(ctx: Ctx):
    ctx.serve()
    load_idx_dataset(ctx.tiny.spec, "train", root=read_only_dir(ctx.tmp))


def cache_under_read_only_folder(ctx: Ctx):
    ctx.serve()
    ctx.monkeypatch.setenv("XDG_CACHE_HOME", str(read_only_dir(ctx.tmp) / "cache"))
    load_idx_dataset(ctx.tiny.spec, "test")


def root_is_a_file(ctx: Ctx):
    ctx.serve()
    (ctx.tmp / "a-file").write_text("not a folder")
    load_idx_dataset(ctx.tiny.spec, "test", root=ctx.tmp / "a-file" / "data")


def unknown_split(ctx: Ctx):
    load_idx_dataset(ctx.tiny.spec, "valid")


def idx_header_cut(ctx: Ctx):
    parse_idx(bytes([0, 0, 0x08, 3]) + (12).to_bytes(4, "big"), source="cut.idx")


def idx_unknown_type(ctx: Ctx):
    parse_idx(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 9]), source="odd.idx")


def idx_empty(ctx: Ctx):
    parse_idx(b"", source="empty.idx")


# ------------------------------------------------------------------ estimators
def pca_too_many_components(ctx):
    PCA(10).fit(X20())


def pca_float_outside_unit(ctx):
    PCA(1.5).fit(X20())


def pca_unknown_solver(ctx):
    PCA(2, solver="svd").fit(X20())


def pca_randomized_float(ctx):
    PCA(0.5, solver="randomized").fit(X20())


def kmeans_misspelt_init(ctx):
    KMeans(3, init="kmeans++").fit(X20())


def kmeans_init_shape(ctx):
    KMeans(3, init=np.zeros((2, 5))).fit(X20())


def kmeans_zero_clusters(ctx):
    KMeans(0).fit(X20())


def gmm_covariance_type(ctx):
    GaussianMixture(2, covariance_type="diagonal").fit(X20())


def gmm_means_init_shape(ctx):
    GaussianMixture(2, means_init=np.zeros((3, 5))).fit(X20())


def bernoulli_grey_data(ctx):
    BernoulliMixture(2).fit(np.full((20, 5), 0.3))


def bernoulli_alpha(ctx):
    BernoulliMixture(2, alpha=0.5).fit(np.ones((20, 5)))


def estimator_strings(ctx):
    KMeans(2).fit(np.array([["a", "b"], ["c", "d"]]))


def estimator_images(ctx):
    PCA(2).fit(np.zeros((20, 4, 4)))


def estimator_unknown_param(ctx):
    PCA().set_params(n_component=2)


# ------------------------------------------------------------------ models
def ae_one_width(ctx):
    Autoencoder([784])


def ae_activation(ctx):
    Autoencoder([12, 4], "swish")


def vae_likelihood(ctx):
    VAE.mlp(12, (8,), 2, likelihood="poisson")


def vae_grey_out_of_range(ctx):
    VAE.mlp(12, (8,), 2).loss(torch.full((3, 12), 255.0))


def ae_numpy_batch(ctx):
    Autoencoder([12, 4]).loss(np.zeros((3, 12), dtype=np.float32))


def ae_wrong_width(ctx):
    Autoencoder([12, 4])(torch.zeros(3, 10))


def hashing_binarizer(ctx):
    HashingAutoencoder([12, 4], binarize="sign")


def denoising_level(ctx):
    DenoisingAutoencoder([12, 4], corruption="masking", level=1.5)


# ------------------------------------------------------------------ trainer and checkpoints
def _trainer(model=None, **kwargs):
    model = model if model is not None else Autoencoder([12, 4])
    kwargs.setdefault("batch_size", 4)
    return Trainer(model, epochs=1, device="cpu", progress=False, **kwargs)


def trainer_batch_size(ctx):
    _trainer(batch_size=0)


def trainer_ragged_tuple(ctx):
    _trainer().fit((torch.rand(10, 12), torch.zeros(5)))


def trainer_empty(ctx):
    _trainer().fit(torch.rand(0, 12))


def trainer_numpy(ctx):
    _trainer().fit(np.random.default_rng(0).random((8, 12), dtype=np.float32))


def trainer_string(ctx):
    _trainer().fit("train.npy")


def checkpoint_other_architecture(ctx):
    path = ctx.tmp / "ae.ckpt"
    _trainer(checkpoint_path=path).fit(torch.rand(8, 12))
    _trainer(VAE.mlp(12, (8,), 2), checkpoint_path=path).fit(torch.rand(8, 12), resume=True)


def checkpoint_garbage(ctx):
    path = ctx.tmp / "run.ckpt"
    path.write_bytes(b"\x00 not a checkpoint")
    _trainer(checkpoint_path=path).fit(torch.rand(8, 12), resume=True)


def checkpoint_plain_state_dict(ctx):
    path = ctx.tmp / "weights.pt"
    torch.save(Autoencoder([12, 4]).state_dict(), path)
    load_checkpoint(path)


def checkpoint_missing(ctx):
    load_checkpoint(ctx.tmp / "nowhere.ckpt")


def warmup_negative(ctx):
    KLWarmup(-1)


# ------------------------------------------------------------------ exercise checks
def exercise_returns_none(ctx):
    ex.check_kmeans_update(lambda X, labels, k: None)


def exercise_returns_text(ctx):
    ex.check_kmeans_assignment(lambda X, centers: "0 1 2")


def exercise_transposed_codes(ctx):
    ex.check_pca_projection(lambda X, k: torch.zeros(k, X.shape[0]))


def exercise_kl_per_dimension(ctx):
    ex.check_gaussian_kl(lambda mu, logvar: torch.zeros_like(mu))


E = ex.ExerciseError
CASES = [
    # data files: (case, error or warning, fragments the message must contain)
    pytest.param(truncated_outside_download_folder, DataNotFoundError, ("t10k-images-idx3-ubyte", "download=False", "apt-get install dataset-tiny"), id="data-truncated-reported"),  # noqa: E501
    pytest.param(corrupted_outside_download_folder, DataNotFoundError, ("train-labels-idx1-ubyte", "was not found", "pass root="), id="data-corrupted-skipped"),  # noqa: E501
    pytest.param(corrupted_download, DataChecksumError, ("t10k-labels-idx1-ubyte.gz", "SHA-256", "delete it so that it is fetched again"), id="data-corrupted-download"),  # noqa: E501
    pytest.param(html_page_instead_of_gzip, DataChecksumError, ("t10k-images-idx3-ubyte.gz", "not a complete gzip file", "check the URL"), id="data-html-instead-of-gzip"),  # noqa: E501
    pytest.param(missing_on_server, DataNotFoundError, ("train-images-idx3-ubyte.gz", "404", "To fix"), id="data-404"),  # noqa: E501
    pytest.param(read_only_root, PermissionError, ("is read-only", "set COMPANION_DATA to a writable folder"), id="data-read-only-root"),  # noqa: E501
    pytest.param(cache_under_read_only_folder, PermissionError, ("cannot create the data folder", "cache", "set COMPANION_DATA to a writable folder"), id="data-read-only-cache"),  # noqa: E501
    pytest.param(root_is_a_file, PermissionError, ("cannot create the data folder", "a-file", "pass root= a writable folder"), id="data-root-is-a-file"),  # noqa: E501
    pytest.param(unknown_split, ValueError, ("split='valid'", "use one of ['test', 'train']", "train_val_split"), id="data-unknown-split"),  # noqa: E501
    pytest.param(idx_header_cut, ValueError, ("cut.idx", "truncated inside its header", "fetch it again"), id="idx-header-cut"),  # noqa: E501
    pytest.param(idx_unknown_type, ValueError, ("odd.idx", "bad magic number 00000701", "delete it"), id="idx-unknown-type"),  # noqa: E501
    pytest.param(idx_empty, ValueError, ("empty.idx", "bad magic number empty", "delete it"), id="idx-empty"),  # noqa: E501
    # estimators
    pytest.param(pca_too_many_components, ValueError, ("n_components=10", "min(n_samples, n_features)=5", "n_components<=5"), id="pca-too-many-components"),  # noqa: E501
    pytest.param(pca_float_outside_unit, ValueError, ("n_components=1.5", "(0, 1)", "pass an int"), id="pca-float-above-one"),  # noqa: E501
    pytest.param(pca_unknown_solver, ValueError, ("solver='svd'", "'covariance_eigh', 'full', 'randomized'"), id="pca-unknown-solver"),  # noqa: E501
    pytest.param(pca_randomized_float, ValueError, ("integer n_components, got 0.5", "pass an int or use solver='full'"), id="pca-randomized-float"),  # noqa: E501
    pytest.param(kmeans_misspelt_init, ValueError, ("init='kmeans++'", "use 'k-means++'"), id="kmeans-misspelt-init"),  # noqa: E501
    pytest.param(kmeans_init_shape, ValueError, ("init has shape (2, 5)", "pass an array of shape (3, 5)"), id="kmeans-init-shape"),  # noqa: E501
    pytest.param(kmeans_zero_clusters, ValueError, ("n_clusters=0", "must be >= 1"), id="kmeans-zero-clusters"),  # noqa: E501
    pytest.param(gmm_covariance_type, ValueError, ("covariance_type='diagonal'", "'diag'"), id="gmm-covariance-type"),  # noqa: E501
    pytest.param(gmm_means_init_shape, ValueError, ("means_init has shape (3, 5)", "expected (2, 5)"), id="gmm-means-init-shape"),  # noqa: E501
    pytest.param(bernoulli_grey_data, ValueError, ("X[0, 0] = 0.3", "binarise it first"), id="bernoulli-grey-data"),  # noqa: E501
    pytest.param(bernoulli_alpha, ValueError, ("alpha=0.5", "must be >= 1"), id="bernoulli-alpha"),  # noqa: E501
    pytest.param(estimator_strings, TypeError, ("dtype <U1", "pass an array of numbers"), id="estimator-strings"),  # noqa: E501
    pytest.param(estimator_images, ValueError, ("shape (20, 4, 4)", "X.reshape(len(X), -1)"), id="estimator-images"),  # noqa: E501
    pytest.param(estimator_unknown_param, ValueError, ("'n_component'", "'n_components'"), id="estimator-unknown-param"),  # noqa: E501
    # models
    pytest.param(ae_one_width, ValueError, ("dims=[784]", "e.g. [784, 32]"), id="ae-one-width"),
    pytest.param(ae_activation, ValueError, ("activation='swish'", "'relu'", "'elu'"), id="ae-activation"),  # noqa: E501
    pytest.param(vae_likelihood, ValueError, ("likelihood='poisson'", "'gaussian'"), id="vae-likelihood"),  # noqa: E501
    pytest.param(vae_grey_out_of_range, ValueError, ("[255, 255]", "scale the data with to_float"), id="vae-unscaled-pixels"),  # noqa: E501
    pytest.param(ae_numpy_batch, TypeError, ("got ndarray", "torch.as_tensor"), id="ae-numpy-batch"),  # noqa: E501
    pytest.param(ae_wrong_width, ValueError, ("(batch, 12)", "got shape (3, 10)", "reshape the data"), id="ae-wrong-width"),  # noqa: E501
    pytest.param(hashing_binarizer, ValueError, ("binarize='sign'", "'straight_through'"), id="hashing-binarizer"),  # noqa: E501
    pytest.param(denoising_level, ValueError, ("level=1.5", "[0, 1]"), id="denoising-level"),
    # trainer and checkpoints
    pytest.param(trainer_batch_size, ValueError, ("batch_size=0", "must be >= 1"), id="trainer-batch-size"),  # noqa: E501
    pytest.param(trainer_ragged_tuple, ValueError, ("train_data[1] has 5 rows", "same length"), id="trainer-ragged-tuple"),  # noqa: E501
    pytest.param(trainer_empty, ValueError, ("train_data is empty", "at least one example"), id="trainer-empty"),  # noqa: E501
    pytest.param(trainer_numpy, TypeError, ("train_data is a NumPy array", "torch.from_numpy"), id="trainer-numpy"),  # noqa: E501
    pytest.param(trainer_string, TypeError, ("got str", "a DataLoader"), id="trainer-string"),
    pytest.param(checkpoint_other_architecture, CheckpointMismatchError, ("saved from Autoencoder, loading into VAE", "architecture it was saved from"), id="checkpoint-other-architecture"),  # noqa: E501
    pytest.param(checkpoint_garbage, CheckpointMismatchError, ("run.ckpt is not a readable checkpoint", "train from scratch"), id="checkpoint-garbage"),  # noqa: E501
    pytest.param(checkpoint_plain_state_dict, CheckpointMismatchError, ("weights.pt was not written by companion's trainer", "delete it"), id="checkpoint-plain-state-dict"),  # noqa: E501
    pytest.param(checkpoint_missing, FileNotFoundError, ("nowhere.ckpt", "train without resume=True first"), id="checkpoint-missing"),  # noqa: E501
    pytest.param(warmup_negative, ValueError, ("epochs=-1", "must be >= 0"), id="kl-warmup-negative"),  # noqa: E501
    # exercise checks (what a student sees for a malformed answer)
    pytest.param(exercise_returns_none, E, ("your centres", "got NoneType"), id="exercise-returns-none"),  # noqa: E501
    pytest.param(exercise_returns_text, E, ("your labels", "got str"), id="exercise-returns-text"),  # noqa: E501
    pytest.param(exercise_transposed_codes, E, ("shape (3, 200)", "It looks transposed"), id="exercise-transposed"),  # noqa: E501
    pytest.param(exercise_kl_per_dimension, E, ("shape (6, 4)", "Sum over the latent dimensions"), id="exercise-kl-not-summed"),  # noqa: E501
]  # fmt: skip


@pytest.fixture
def ctx(tiny, isolated_data_env, http_server, monkeypatch, tmp_path) -> Ctx:
    served, url, _ = http_server
    context = Ctx(tiny, tmp_path, served, url, monkeypatch)
    yield context
    for folder in (tmp_path / "read-only",):
        if folder.exists():
            folder.chmod(0o755)  # let pytest clean up


@pytest.mark.parametrize(("case", "error", "fragments"), CASES)
def test_bad_input_is_explained(ctx, case: Callable, error: type, fragments: tuple[str, ...]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the cases that warn check it themselves
        with pytest.raises(error) as info:
            case(ctx)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


# ------------------------------------------------------------------ cases in several steps
def test_truncated_file_in_the_cache_is_fetched_again(ctx):
    ctx.serve()
    cache = ctx.tiny.write(search_dirs(ctx.tiny.spec)[0])
    name = ctx.tiny.names["train", "images"]
    blob = (cache / f"{name}.gz").read_bytes()
    (cache / f"{name}.gz").write_bytes(blob[:-20])  # a download cut short
    with pytest.warns(DataWarning, match=rf"{name}.gz is not a complete gzip file.*Fetching it"):
        images, _ = load_idx_dataset(ctx.tiny.spec, "train")
    np.testing.assert_array_equal(images.numpy(), ctx.tiny.arrays["train", "images"])
    assert gzip.decompress((cache / f"{name}.gz").read_bytes()) == ctx.tiny.raw["train", "images"]


def _fetch_in_child(spec, root: str, url: str, barrier, results) -> None:
    os.environ["COMPANION_DATA_URL"] = url
    barrier.wait()
    try:
        images, labels = load_idx_dataset(spec, "train", root=root)
        results.put(("ok", images.numpy().tobytes(), labels.numpy().tobytes()))
    except Exception as err:  # reported to the parent, which fails the test
        results.put(("error", repr(err), ""))


def test_two_processes_fetching_at_once_leave_no_torn_file(ctx, slow_http_server):
    served, url, hits = slow_http_server
    ctx.tiny.write(served)
    root = ctx.tmp / "shared"
    mp = multiprocessing.get_context("fork")
    barrier, results = mp.Barrier(2), mp.Queue()
    children = [
        mp.Process(target=_fetch_in_child, args=(ctx.tiny.spec, str(root), url, barrier, results))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    seen = 0  # meanwhile, every file that appears must already be whole
    while any(child.is_alive() for child in children):
        for key in (("train", "images"), ("train", "labels")):
            path = root / f"{ctx.tiny.names[key]}.gz"
            if path.exists():
                assert gzip.decompress(path.read_bytes()) == ctx.tiny.raw[key]
                seen += 1
        time.sleep(0.01)
    outcomes = [results.get(timeout=30) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    expected = ctx.tiny.arrays["train", "images"].tobytes()
    for status, images, _ in outcomes:
        assert status == "ok", images
        assert images == expected
    assert sorted(p.name for p in root.iterdir()) == sorted(
        f"{ctx.tiny.names['train', kind]}.gz" for kind in ("images", "labels")
    )  # no temporary file left behind
    assert len(hits) >= 2 and seen > 0


# ------------------------------------------------------------------ the fetch command
def _not_gzip(ctx: Ctx) -> list[str]:
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (ctx.served / name).write_text("<html>moved</html>")
    ctx.monkeypatch.setenv("COMPANION_DATA_URL", ctx.url)
    return ["mnist", "--root", str(ctx.tmp / "mnist")]


def _root_is_a_file(ctx: Ctx) -> list[str]:
    (ctx.tmp / "a-file").write_text("")
    ctx.monkeypatch.setenv("COMPANION_DATA_URL", ctx.url)
    return ["mnist", "--root", str(ctx.tmp / "a-file" / "mnist")]


CLI_CASES = [
    pytest.param(lambda ctx: ["fashoin-mnist"], 2, ("unknown dataset 'fashoin-mnist'", "choose one of ['fashion-mnist', 'mnist']"), id="cli-unknown-dataset"),  # noqa: E501
    pytest.param(lambda ctx: ["mnist", "--check"], 1, ("t10k-images-idx3-ubyte was not found", "download=False", "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz"), id="cli-check-absent"),  # noqa: E501
    pytest.param(_not_gzip, 1, ("not a valid t10k-images-idx3-ubyte", "check the URL"), id="cli-bad-download"),  # noqa: E501
    pytest.param(_root_is_a_file, 1, ("cannot create the data folder", "a-file", "writable folder"), id="cli-root-is-a-file"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(("argv", "code", "fragments"), CLI_CASES)
def test_fetch_command_explains_failures(ctx, capsys, argv, code, fragments):
    assert fetch_main(argv(ctx)) == code
    err = capsys.readouterr().err
    assert "error: " in err and "Traceback" not in err  # after pooch's progress bar, if any
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in: {err}"


def test_fetch_command_as_make_data_runs_it(isolated_data_env):
    """The real ``python -m companion.data`` process: exit code and message, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "companion.data", "cifar10"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COMPANION_DATA_URL": "http://127.0.0.1:9/"},
    )
    assert result.returncode == 2
    assert "unknown dataset 'cifar10'; choose one of ['fashion-mnist', 'mnist']" in result.stderr
    assert "Traceback" not in result.stderr

"""Common checks every classical estimator of companion passes, in the spirit of
scikit-learn's ``check_estimator``.

The estimators are discovered by walking the package: any class with ``fit``
whose ``__init__`` takes a ``random_state`` and that is not an ``nn.Module``.
A new estimator is checked with no edit here. Its data come from the factory
named by its ``input_domain`` class attribute ("real" or "binary"); its
public methods must be listed in ``METHOD_ARGS`` (a check fails otherwise),
so that each one is called before fit, with bad data, and after a round trip.
Abstract bases without an ``__init__`` (``EMMixture``) are checked through
their subclasses.
"""

from __future__ import annotations

import copy
import inspect
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from helpers import package_modules
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from companion._validation import resolve_dtype
from companion.classical._base import ParamsMixin
from companion.errors import NotFittedError

N_SAMPLES, N_FEATURES = 20, 5
# Small sizes set by parameter name (not by class), so that 20 samples suffice.
SMALL_PARAMS = {"n_clusters": 3, "n_components": 2, "random_state": 0}


# ------------------------------------------------------------------ discovery
def discover_estimators() -> list[type]:
    """Estimators of companion, found by what they are in every module and subpackage:
    classes (not nn.Modules) with ``fit`` and either ``score_samples`` or scikit-learn's
    parameter protocol (``ParamsMixin``); abstract bases without an ``__init__`` are left
    to their subclasses."""
    found = {}
    for module in package_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or issubclass(cls, nn.Module):
                continue
            if not callable(getattr(cls, "fit", None)) or cls.__init__ is object.__init__:
                continue
            if callable(getattr(cls, "score_samples", None)) or issubclass(cls, ParamsMixin):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


ESTIMATORS = discover_estimators()
IDS = [cls.__name__ for cls in ESTIMATORS]


def test_discovery_finds_the_estimators_of_today():
    names = set(IDS)
    assert {"PCA", "KMeans", "GaussianMixture", "BernoulliMixture", "ParzenWindow"} <= names
    assert "Trainer" not in names and "EMMixture" not in names  # no random_state / abstract


# ------------------------------------------------------------------ data and estimators
def _real_data(n: int, d: int, seed: int) -> np.ndarray:
    """Three well separated blobs, float64 (n, d)."""
    rng = np.random.default_rng(seed)
    centres = 4.0 * rng.normal(size=(3, d))
    return centres[np.arange(n) % 3] + rng.normal(size=(n, d))


def _binary_data(n: int, d: int, seed: int) -> np.ndarray:
    """Noisy copies of three binary prototypes, float64 (n, d) of 0 and 1."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((3, d)) < 0.5
    flips = rng.random((n, d)) < 0.1
    return (prototypes[np.arange(n) % 3] ^ flips).astype(np.float64)


DATA_FACTORIES: dict[str, Callable[[int, int, int], np.ndarray]] = {
    "real": _real_data,
    "binary": _binary_data,
}


def make_data(cls: type, n: int = N_SAMPLES, d: int = N_FEATURES, seed: int = 0) -> np.ndarray:
    domain = getattr(cls, "input_domain", "real")
    assert domain in DATA_FACTORIES, (
        f"{cls.__name__}.input_domain={domain!r} has no data factory; add one to DATA_FACTORIES."
    )
    return DATA_FACTORIES[domain](n, d, seed)


def make_estimator(cls: type) -> Any:
    params = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in SMALL_PARAMS.items() if k in params})


def as_kind(X: np.ndarray, *, dtype=np.float64, device: torch.device | None = None):
    """NumPy array of ``dtype``, or a tensor on ``device`` when one is given."""
    X = X.astype(dtype)
    return X if device is None else torch.from_numpy(X).to(device)


# Positional arguments of every public method, from the training data X and the
# fitted estimator (None before fit). A method missing here fails test_methods_are_known.
METHOD_ARGS: dict[str, Callable[[Any, Any], tuple]] = {
    "transform": lambda X, est: (X,),
    "predict": lambda X, est: (X,),
    "predict_proba": lambda X, est: (X,),
    "score": lambda X, est: (X,),
    "score_samples": lambda X, est: (X,),
    "bic": lambda X, est: (X,),
    "aic": lambda X, est: (X,),
    "inverse_transform": lambda X, est: (X if est is None else est.transform(X),),
    "get_covariance": lambda X, est: (),
    "sample": lambda X, est: (3,),
}
TAKES_X = ("transform", "predict", "predict_proba", "score", "score_samples", "bic", "aic")
NOT_CHECKED = {"fit", "fit_predict", "fit_transform", "partial_fit", "get_params", "set_params"}


def public_methods(est: Any) -> list[str]:
    return sorted(
        name
        for name, value in inspect.getmembers(type(est), callable)
        if not name.startswith("_") and name not in NOT_CHECKED and not isinstance(value, type)
    )


def outputs(est: Any, X: Any) -> dict[str, Any]:
    """Every public method's result on X (sample with a fixed seed)."""
    results = {}
    for name in public_methods(est):
        if name == "sample":
            results[name] = est.sample(3, seed=0)
        else:
            results[name] = getattr(est, name)(*METHOD_ARGS[name](X, est))
    return results


def fitted_attributes(est: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}


def leaves(value: Any) -> list[Any]:
    return [x for item in value for x in leaves(item)] if isinstance(value, tuple) else [value]


def assert_identical(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        for x, y in zip(leaves(a[key]), leaves(b[key]), strict=True):
            if isinstance(x, torch.Tensor):
                assert torch.equal(x, y), key
            elif isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y, err_msg=key)
            else:
                assert x == y, key


def fit_quietly(est: Any, X: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a ConvergenceWarning on tiny data is fine
        return est.fit(X)


parametrize = pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)


# ------------------------------------------------------------------ checks
@parametrize
def test_methods_are_known(cls):
    unknown = set(public_methods(make_estimator(cls))) - set(METHOD_ARGS)
    assert not unknown, f"add {sorted(unknown)} to METHOD_ARGS so that the checks call them"


@parametrize
def test_fit_returns_self_and_sets_n_features_in(cls):
    est = make_estimator(cls)
    X = make_data(cls)
    assert fit_quietly(est, X) is est
    assert est.n_features_in_ == N_FEATURES
    assert est.fit(X, None) is est  # y=None is accepted, as in scikit-learn


@parametrize
def test_methods_before_fit_raise_not_fitted(cls):
    est = make_estimator(cls)
    X = make_data(cls)
    for name in public_methods(est):
        message = (
            rf"This {cls.__name__} instance is not fitted yet; call fit\(X\) before {name}\(\)"
        )
        with pytest.raises(NotFittedError, match=message):
            getattr(est, name)(*METHOD_ARGS[name](X, None))


@parametrize
def test_feature_count_mismatch_is_explained(cls):
    est = fit_quietly(make_estimator(cls), make_data(cls))
    narrow = make_data(cls, d=N_FEATURES - 1)
    for name in set(public_methods(est)) & set(TAKES_X):
        with pytest.raises(
            ValueError,
            match=rf"X has {N_FEATURES - 1} features, but {cls.__name__} is expecting "
            rf"{N_FEATURES} features as input; pass data with {N_FEATURES} columns",
        ):
            getattr(est, name)(narrow)


@parametrize
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_located(cls, bad):
    X = make_data(cls)
    X_bad = X.copy()
    X_bad[3, 1] = bad
    where = rf"first: {bad} at index \[3, 1\]\); remove or impute"
    with pytest.raises(ValueError, match=where):
        make_estimator(cls).fit(X_bad)
    est = fit_quietly(make_estimator(cls), X)
    for name in set(public_methods(est)) & set(TAKES_X):
        with pytest.raises(ValueError, match=where):
            getattr(est, name)(X_bad)


@parametrize
def test_empty_input_is_refused(cls):
    X = make_data(cls)
    empty = X[:0]
    with pytest.raises(ValueError, match=r"X has n_samples=0, but at least \d (is|are) needed"):
        make_estimator(cls).fit(empty)
    est = fit_quietly(make_estimator(cls), X)
    for name in set(public_methods(est)) & set(TAKES_X):
        with pytest.raises(ValueError, match=r"X has n_samples=0, but at least 1 is needed"):
            getattr(est, name)(empty)


@parametrize
def test_single_sample_fit_is_explained_and_single_sample_use_works(cls):
    """Every estimator of today needs two samples (or no more clusters than points), so a
    fit on one sample must be refused with the reason; it must never pass unchecked. An
    estimator that can fit one sample needs its own test of what that fit gives."""
    X = make_data(cls)
    with pytest.raises(ValueError, match=r"n_samples=1.*more data"):
        fit_quietly(make_estimator(cls), X[:1])
    est = fit_quietly(make_estimator(cls), X)
    for name, result in outputs(est, X[:1]).items():
        if isinstance(result, np.ndarray) and name in TAKES_X:
            assert result.shape[0] == 1, name


def _float_leaves(values: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{key}[{i}]": x
        for key, value in values.items()
        for i, x in enumerate(leaves(value))
        if isinstance(x, (np.ndarray, torch.Tensor)) and (x.dtype.kind if isinstance(x, np.ndarray)
                                                           else "f" * x.is_floating_point()) == "f"
    }  # fmt: skip


@parametrize
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtype_is_kept_in_outputs_and_fitted_attributes(cls, dtype, device):
    """Results have the data's dtype, or the one the ``dtype`` parameter asks for."""
    X = as_kind(make_data(cls), dtype=dtype, device=device)
    settings = [{}]
    if "dtype" in cls._get_param_names():
        settings.append({"dtype": None})  # None: keep the data's dtype
    for params in settings:
        est = fit_quietly(make_estimator(cls).set_params(**params), X)
        wanted = (
            resolve_dtype(est.get_params().get("dtype"))
            or torch.from_numpy(np.zeros(1, dtype)).dtype
        )
        values = {**fitted_attributes(est), **outputs(est, X)}
        for key, value in _float_leaves(values).items():
            assert isinstance(value, torch.Tensor), key  # tensor in, tensor out
            assert value.dtype == wanted and value.device == X.device, (key, params)


@parametrize
def test_numpy_in_numpy_out(cls):
    X = make_data(cls)
    est = fit_quietly(make_estimator(cls), X)
    values = {**fitted_attributes(est), **outputs(est, X)}
    for key, value in values.items():
        for x in leaves(value):
            assert not isinstance(x, torch.Tensor), key
    for name in ("predict", "transform"):
        if name in values:
            assert isinstance(values[name], np.ndarray), name
    labels = values.get("predict")
    if labels is not None:
        assert labels.dtype == np.int64 and labels.shape == (N_SAMPLES,)


@parametrize
def test_tensor_in_tensor_out_on_the_same_device(cls, device):
    X = as_kind(make_data(cls), device=device)
    est = fit_quietly(make_estimator(cls), X)
    values = {**fitted_attributes(est), **outputs(est, X)}
    arrays = [x for v in values.values() for x in leaves(v) if hasattr(x, "shape")]
    assert arrays
    for x in arrays:
        assert isinstance(x, torch.Tensor) and x.device == X.device


@parametrize
def test_same_random_state_same_fit(cls):
    X = make_data(cls)
    a = fit_quietly(make_estimator(cls), X)
    b = fit_quietly(make_estimator(cls), X)
    assert_identical(fitted_attributes(a), fitted_attributes(b))
    assert_identical(outputs(a, X), outputs(b, X))


@parametrize
@pytest.mark.parametrize("copier", [copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))],
                         ids=["deepcopy", "pickle"])  # fmt: skip
def test_copies_predict_identically(cls, copier):
    X = make_data(cls)
    est = fit_quietly(make_estimator(cls), X)
    twin = copier(est)
    assert_identical(outputs(est, X), outputs(twin, X))
    assert_identical(fitted_attributes(est), fitted_attributes(twin))


@parametrize
def test_get_params_set_params_and_clone(cls):
    est = make_estimator(cls)
    params = est.get_params()
    assert sorted(params) == sorted(p for p in inspect.signature(cls.__init__).parameters
                                    if p != "self")  # fmt: skip
    # a parameter to change: random_state where there is one, else the first one
    name = "random_state" if "random_state" in params else sorted(params)[0]
    value = 7 if name == "random_state" else copy.deepcopy(params[name])
    assert est.set_params(**{name: value}) is est and est.get_params()[name] == value
    with pytest.raises(ValueError, match=rf"'colour' is not a parameter of {cls.__name__}; "
                       rf"valid parameters are \[.*'{name}'"):  # fmt: skip
        est.set_params(colour="red")
    X = make_data(cls)
    fitted = fit_quietly(est, X)
    twin = clone(fitted)  # sklearn checks that __init__ stores every parameter unchanged
    assert twin.get_params() == fitted.get_params() and not hasattr(twin, "n_features_in_")
    assert_identical(outputs(fit_quietly(twin, X), X), outputs(fitted, X))
    assert repr(est).startswith(f"{cls.__name__}(")
    if name == "random_state":
        assert "random_state=7" in repr(est)


def _pca_and_kmeans() -> tuple[type, type]:
    by_name = {cls.__name__: cls for cls in ESTIMATORS}
    return by_name["PCA"], by_name["KMeans"]


def test_pipeline_scaler_pca_kmeans_matches_the_steps_by_hand():
    PCA, KMeans = _pca_and_kmeans()
    X = _real_data(60, N_FEATURES, seed=1)
    pipe = Pipeline([("scale", StandardScaler()), ("pca", PCA(2)),
                     ("kmeans", KMeans(3, random_state=0))])  # fmt: skip
    labels = pipe.fit(X).predict(X)
    codes = PCA(2).fit_transform(StandardScaler().fit_transform(X))
    by_hand = KMeans(3, random_state=0).fit(codes)
    np.testing.assert_array_equal(labels, by_hand.labels_)
    np.testing.assert_array_equal(labels, by_hand.predict(codes))
    pipe.set_params(pca__n_components=3)
    assert pipe.fit(X).named_steps["pca"].components_.shape == (3, N_FEATURES)
    assert clone(pipe).named_steps["kmeans"].get_params()["n_clusters"] == 3


def test_pipeline_pca_then_logistic_regression_learns_the_labels():
    PCA, _ = _pca_and_kmeans()
    X = _real_data(60, N_FEATURES, seed=2)
    y = np.arange(60) % 3  # the blob of each row
    pipe = Pipeline([("scale", StandardScaler()), ("pca", PCA(2)), ("lr", LogisticRegression())])
    assert pipe.fit(X, y).score(X, y) > 0.9

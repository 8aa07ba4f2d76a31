import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from companion._validation import (
    check_array,
    check_is_fitted,
    check_n_features,
    check_positive_int,
    feature_names,
    resolve_dtype,
    to_input_kind,
    validate_data,
)
from companion.errors import NotFittedError


def test_numpy_in_numpy_out_and_float_dtypes_kept():
    for dtype in (np.float32, np.float64):
        X = np.ones((4, 3), dtype=dtype)
        tensor, kind = check_array(X)
        assert tensor.dtype == torch.from_numpy(X).dtype and kind.is_numpy
        out = to_input_kind(tensor * 2, kind)
        assert isinstance(out, np.ndarray) and out.dtype == dtype


def test_tensor_in_tensor_out_and_ints_become_float64():
    tensor, kind = check_array(torch.arange(6).reshape(3, 2))
    assert tensor.dtype == torch.float64 and not kind.is_numpy
    assert isinstance(to_input_kind(tensor, kind), torch.Tensor)


def test_one_dimensional_input_suggests_reshape():
    with pytest.raises(
        ValueError,
        match=r"X must be 2-D \(n_samples, n_features\), got shape "
        r"\(5,\)\. Reshape your data: X.reshape\(-1, 1\)",
    ):
        check_array(np.zeros(5))


def test_images_suggest_flattening():
    with pytest.raises(ValueError, match=r"got shape \(2, 28, 28\); flatten it"):
        check_array(torch.zeros(2, 28, 28))


def test_nan_and_inf_are_located():
    X = np.zeros((3, 4))
    X[2, 1] = np.nan
    X[0, 3] = np.inf
    with pytest.raises(
        ValueError,
        match=r"X contains 2 non-finite values \(first: inf at index "
        r"\[0, 3\]\); remove or impute",
    ):
        check_array(X)
    tensor, _ = check_array(X, allow_nan=True)
    assert torch.isnan(tensor[2, 1])


def test_too_few_samples_names_counts():
    with pytest.raises(ValueError, match=r"X has n_samples=2, but at least 5 are needed"):
        check_array(np.zeros((2, 3)), min_samples=5)
    with pytest.raises(ValueError, match=r"n_samples=0, but at least 1 is needed"):
        check_array(np.zeros((0, 3)))


def test_non_numeric_and_wrong_types():
    with pytest.raises(TypeError, match=r"X has dtype <U1, which is not numeric"):
        check_array(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match=r"X must be a NumPy array or a torch tensor, got dict"):
        check_array({"a": 1})


def test_feature_mismatch_and_unfitted_messages():
    class Model:
        pass

    with pytest.raises(ValueError, match=r"X has 3 features, but Model is expecting 5 features"):
        check_n_features(torch.zeros(2, 3), 5, estimator=Model())

    with pytest.raises(
        NotFittedError,
        match=r"This Model instance is not fitted yet; call "
        r"fit\(X\) before transform\(\)",
    ):
        check_is_fitted(Model(), "components_", method="transform")


def test_positive_int():
    assert check_positive_int(3, name="k") == 3
    assert type(check_positive_int(np.int64(3), name="k")) is int
    assert check_positive_int(0, name="k", minimum=0) == 0
    with pytest.raises(ValueError, match="k=0 must be >= 1"):
        check_positive_int(0, name="k")
    for wrong in (2.5, 2.0, "3", True, None):
        with pytest.raises(TypeError, match=r"k=.* must be an integer"):
            check_positive_int(wrong, name="k")


def _integer_parameters():
    """Every integer parameter of the package that used to be checked on its own."""
    from companion import data
    from companion.models import VAE, Autoencoder
    from companion.training import KLWarmup, StepDecay

    return {
        "make_swiss_roll(n_samples)": lambda v: data.make_swiss_roll(v),
        "Autoencoder(dims)": lambda v: Autoencoder([4, v]),
        "VAE.mlp(hidden)": lambda v: VAE.mlp(4, (v,), 2),
        "KLWarmup(epochs)": lambda v: KLWarmup(v),  # minimum 0
        "StepDecay(at)": lambda v: StepDecay(1e-3, at=v),  # minimum 0
    }


@pytest.mark.parametrize("site", sorted(_integer_parameters()))
def test_integer_parameters_raise_typeerror_for_a_type_and_valueerror_for_a_value(site):
    """One rule everywhere (check_positive_int's docstring): TypeError for a wrong type
    (a float, even a whole one, or a bool), ValueError for an integer out of range."""
    build = _integer_parameters()[site]
    build(3)  # a valid integer is accepted
    for wrong_type in (2.0, True):
        with pytest.raises(TypeError, match="must be an integer"):
            build(wrong_type)
    with pytest.raises(ValueError, match="must be >= "):
        build(-2)


def test_large_finite_values_are_not_mistaken_for_inf():
    X = torch.full((4, 2), 3e38, dtype=torch.float32)  # the sum overflows, the entries do not
    tensor, _ = check_array(X)
    assert torch.equal(tensor, X)


def test_object_arrays_of_numbers_are_converted_and_others_named():
    tensor, kind = check_array(np.array([[1, 2.5], [3, 4]], dtype=object))
    assert tensor.dtype == torch.float64 and kind.is_numpy
    assert torch.equal(tensor, torch.tensor([[1, 2.5], [3, 4]], dtype=torch.float64))
    bad = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=object)
    bad[1, 0] = {"a": 1}
    with pytest.raises(
        TypeError, match=r"X has dtype object and not every entry is a number \(.*argument must be"
    ):
        check_array(bad)


def test_sparse_and_complex_input_are_refused_with_the_fix():
    sparse = pytest.importorskip("scipy.sparse")
    for matrix in (sparse.csr_matrix(np.eye(3)), sparse.csr_array(np.eye(3))):
        with pytest.raises(
            TypeError, match=r"X is a scipy sparse \w+; .* pass a dense array \(X.toarray\(\)\)"
        ):
            check_array(matrix)
    with pytest.raises(TypeError, match=r"X is a sparse torch tensor .* \(X.to_dense\(\)\)"):
        check_array(torch.eye(3).to_sparse())
    for complex_x in (np.ones((2, 2), dtype=complex), torch.ones(2, 2, dtype=torch.complex64)):
        with pytest.raises(ValueError, match=r"Complex data not supported: X has dtype complex"):
            check_array(complex_x)


def test_array_likes_with___array___and_read_only_arrays_are_accepted():
    class ArrayLike:
        def __array__(self, dtype=None, copy=None):
            return np.ones((2, 3))

    tensor, kind = check_array(ArrayLike())
    assert tensor.shape == (2, 3) and kind.is_numpy
    X = np.ones((2, 3))
    X.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch would warn that the array is not writable
        assert check_array(X)[0].shape == (2, 3)


def test_empty_features_message_is_scikit_learns():
    with pytest.raises(
        ValueError,
        match=r"X has 0 feature\(s\) \(shape=\(4, 0\)\) while a minimum of 1 is required",
    ):
        check_array(np.zeros((4, 0)))


class _Estimator:
    pass


def test_validate_data_records_and_checks_feature_names():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["a", "b", "c"])
    est = _Estimator()
    tensor, kind = validate_data(est, frame, reset=True)
    assert kind.is_numpy and tensor.shape == (4, 3) and est.n_features_in_ == 3
    assert est.feature_names_in_.dtype == object and list(est.feature_names_in_) == ["a", "b", "c"]
    validate_data(est, frame, reset=False)
    header = "The feature names should match those that were passed during fit.\n"
    with pytest.raises(ValueError, match=header + "Feature names must be in the same order"):
        validate_data(est, frame[["c", "b", "a"]], reset=False)
    with pytest.raises(ValueError, match=header + "Feature names unseen at fit time:\n- d\n"):
        validate_data(est, frame.rename(columns={"c": "d"}), reset=False)
    with pytest.raises(ValueError, match="Feature names seen at fit time, yet now missing:\n- c\n"):
        validate_data(est, frame[["a", "b"]], reset=False)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but _Estimator"):
        validate_data(est, frame.to_numpy(), reset=False)
    validate_data(est, frame.to_numpy(), reset=True)  # refit on an array forgets the names
    assert not hasattr(est, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but _Estimator was fitted without"):
        validate_data(est, frame, reset=False)
    with pytest.raises(TypeError, match=r"column names of types \['int', 'str'\]"):
        validate_data(est, pd.DataFrame(np.ones((2, 2)), columns=["a", 1]), reset=True)
    assert feature_names(pd.DataFrame(np.ones((2, 2)))) is None  # integer names: no names


def test_not_fitted_error_is_scikit_learns_once_it_is_imported():
    import pickle

    from sklearn.exceptions import NotFittedError as SklearnNotFittedError

    err = NotFittedError("not fitted")
    assert isinstance(err, SklearnNotFittedError) and isinstance(err, ValueError | AttributeError)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err) and again.args == ("not fitted",)


def test_not_fitted_error_does_not_need_scikit_learn():
    code = (
        "import sys; from companion.classical import PCA\n"
        "try:\n    PCA().transform([[1.0]])\n"
        "except ValueError as err:\n    print(type(err).__name__, 'sklearn' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["NotFittedError", "False"]


def test_resolve_dtype_accepts_names_and_dtypes():
    for value in ("float64", "torch.float64", np.float64, np.dtype("float64"), torch.float64):
        assert resolve_dtype(value) is torch.float64
    assert resolve_dtype("float32") is torch.float32 and resolve_dtype(None) is None
    for bad in ("int64", "tensor", object, 3):
        with pytest.raises(ValueError, match=r"dtype=.* is not a float dtype; use 'float64'"):
            resolve_dtype(bad)


def test_values_checked_skips_only_the_value_scan():
    from companion._validation import check_model_input, values_already_checked, values_checked

    bad = torch.tensor([[0.0, float("nan")]])
    with pytest.raises(ValueError, match="NaN or inf"):
        check_model_input(bad, 2, name="m")
    assert not values_already_checked()
    with values_checked():
        with values_checked():
            assert values_already_checked()
        assert values_already_checked()  # nested blocks restore, not reset
        assert check_model_input(bad, 2, name="m") is bad  # the caller scanned already
        with pytest.raises(ValueError, match="shape"):
            check_model_input(bad, 3, name="m")  # cheap checks still run
    assert not values_already_checked()

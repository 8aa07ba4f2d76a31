import numpy as np
import pytest
import torch

from companion._validation import (
    check_array,
    check_is_fitted,
    check_n_features,
    check_positive_int,
    to_input_kind,
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
        r"\(5,\); reshape it with X.reshape\(-1, 1\)",
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
    with pytest.raises(ValueError, match=r"X has 3 features, but the estimator was fitted on 5"):
        check_n_features(torch.zeros(2, 3), 5)

    class Model:
        pass

    with pytest.raises(
        NotFittedError,
        match=r"This Model instance is not fitted yet; call "
        r"fit\(X\) before transform\(\)",
    ):
        check_is_fitted(Model(), "components_", method="transform")


def test_positive_int():
    assert check_positive_int(3, name="k") == 3
    with pytest.raises(ValueError, match="k=0 must be >= 1"):
        check_positive_int(0, name="k")
    with pytest.raises(TypeError, match=r"k=2.5 must be an integer"):
        check_positive_int(2.5, name="k")


def test_large_finite_values_are_not_mistaken_for_inf():
    X = torch.full((4, 2), 3e38, dtype=torch.float32)  # the sum overflows, the entries do not
    tensor, _ = check_array(X)
    assert torch.equal(tensor, X)

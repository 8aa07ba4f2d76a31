"""Each exercise check accepts a correct answer and explains at least two wrong ones."""

import pytest
import torch

from companion.exercises import (
    ExerciseError,
    check_e_step,
    check_kmeans_assignment,
    check_kmeans_update,
    check_pca_projection,
    check_reconstruction_error,
)


def _eig(X):
    Xc = X - X.mean(0)
    values, vectors = torch.linalg.eigh(Xc.T @ Xc)
    return Xc, vectors


def pca_codes(X, k):
    Xc, vectors = _eig(X)
    return Xc @ vectors.flip(1)[:, :k]


def test_pca_projection_accepts_a_correct_answer_with_any_signs(capsys):
    check_pca_projection(pca_codes)
    check_pca_projection(lambda X, k: -pca_codes(X, k))
    check_pca_projection(lambda X, k: pca_codes(X, k).numpy())
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda X, k: _eig(X)[0] @ _eig(X)[1][:, :k], r"increasing variance: torch.linalg.eigh"),
        (lambda X, k: X @ _eig(X)[1].flip(1)[:, :k], r"column means up to .* subtract X.mean\(0\)"),
        (lambda X, k: pca_codes(X, k).T, r"shape \(3, 200\), expected \(200, 3\).*transposed"),
        (lambda X, k: pca_codes(X, k + 1), r"shape \(200, 4\), expected \(200, 3\)"),
        (lambda X, k: pca_codes(X, k) * 2, r"column 0 of your codes is off by up to"),
        (lambda X, k: "codes", r"should be a tensor or array of numbers, got str"),
    ],
)
def test_pca_projection_explains_wrong_answers(answer, message):
    with pytest.raises(ExerciseError, match=message):
        check_pca_projection(answer)


def reconstruction_error(X, k):
    Xc, vectors = _eig(X)
    V = vectors.flip(1)[:, :k]
    return ((Xc - Xc @ V @ V.T) ** 2).sum() / X.shape[0]


def test_reconstruction_error_accepts_a_correct_answer(capsys):
    check_reconstruction_error(reconstruction_error)
    check_reconstruction_error(lambda X, k: float(reconstruction_error(X, k)))
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda X, k: reconstruction_error(X, k) / X.shape[1], r"d times too small"),
        (
            lambda X, k: reconstruction_error(X, k) * X.shape[0] / (X.shape[0] - 1),
            r"off by n/\(n-1\)",
        ),
        (
            lambda X, k: ((X - X @ _eig(X)[1][:, -k:] @ _eig(X)[1][:, -k:].T) ** 2).sum() / len(X),
            r"expected .* sum of the discarded eigenvalues",
        ),
        (lambda X, k: torch.zeros(2), r"returned shape \(2,\); return one number"),
    ],
)
def test_reconstruction_error_explains_wrong_answers(answer, message):
    with pytest.raises(ExerciseError, match=message):
        check_reconstruction_error(answer)


def test_exercise_error_is_an_assertion_error():
    assert issubclass(ExerciseError, AssertionError)


# ---------------------------------------------------------------- clustering checks
def nearest(X, C):
    return torch.cdist(X, C).argmin(1)


def test_kmeans_assignment(capsys):
    check_kmeans_assignment(nearest)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="farthest centre: use argmin"):
        check_kmeans_assignment(lambda X, C: torch.cdist(X, C).argmax(1))
    with pytest.raises(ExerciseError, match=r"shape \(150, 3\), expected \(150,\).*argmin"):
        check_kmeans_assignment(lambda X, C: torch.cdist(X, C))
    with pytest.raises(ExerciseError, match=r"points get the wrong centre"):
        check_kmeans_assignment(
            lambda X, C: (X[:, None, :] - C[None]).abs().max(2).values.argmin(1) * 0
        )


def test_kmeans_update(capsys):
    def means(X, labels, k):
        return torch.stack([X[labels == j].mean(0) for j in range(k)])

    check_kmeans_update(means)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="sums of the points: divide"):
        check_kmeans_update(
            lambda X, labels, k: torch.stack([X[labels == j].sum(0) for j in range(k)])
        )
    with pytest.raises(ExerciseError, match=r"shape \(2, 3\), expected \(3, 2\)"):
        check_kmeans_update(lambda X, labels, k: means(X, labels, k).T)
    with pytest.raises(ExerciseError, match="off by up to"):
        check_kmeans_update(lambda X, labels, k: means(X, labels, k) + 0.1)


def spherical_e_step(
    X, weights, means, variances, use_weights=True, normalise=True, sq=True, constant=True
):
    """The E-step in log space (stable), or one of the typical mistakes."""
    var = variances if sq else variances.sqrt()
    d = X.shape[1]
    log_p = -0.5 * torch.cdist(X, means) ** 2 / var
    if constant:
        log_p = log_p - 0.5 * d * torch.log(2 * torch.pi * var)
    if use_weights:
        log_p = log_p + weights.log()
    return torch.softmax(log_p, 1) if normalise else log_p.exp()


def unstable_e_step(X, weights, means, variances):
    """Densities first, normalised after: right near the means, 0/0 = NaN far from them."""
    d = X.shape[1]
    dens = torch.exp(-0.5 * torch.cdist(X, means) ** 2 / variances)
    dens = weights * dens / (2 * torch.pi * variances) ** (d / 2)
    return dens / dens.sum(1, keepdim=True)


def test_e_step(capsys):
    check_e_step(spherical_e_step)
    assert "correct, and stable" in capsys.readouterr().out
    for kwargs, message in [
        ({"normalise": False}, "rows do not sum to 1"),
        ({"use_weights": False}, "left out the mixing weights"),
        ({"sq": False}, "used σ where σ² belongs"),
        ({"constant": False}, "dropped the Gaussian's normalising constant"),
    ]:
        with pytest.raises(ExerciseError, match=message):
            check_e_step(lambda X, w, m, v, kw=kwargs: spherical_e_step(X, w, m, v, **kw))


def test_e_step_refuses_the_exp_then_normalise_answer():
    """The unstable answer is right on the blobs: only the far points expose it."""
    from companion.exercises.clustering import _clusters

    X, means = _clusters(seed=2)
    w = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    v = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    assert torch.allclose(unstable_e_step(X, w, means, v), spherical_e_step(X, w, means, v))
    with pytest.raises(ExerciseError, match=r"60 or more from every mean.*underflows.*log-sum-exp"):
        check_e_step(unstable_e_step)

"""Sparse coding and dictionary learning (Olshausen & Field, 1996; Mairal et al., 2010).

Each row x of X (n, d) is written as a sparse combination a of the rows of a
dictionary D (k, d), the atoms:

    min_A  ½ ‖X - A D‖²_F + α ‖A‖₁        over codes A (n, k), for fixed D;
    min_D  ½ ‖X - A D‖²_F  with ‖D_j‖ ≤ 1   over atoms, for fixed A.

:func:`sparse_encode` solves the first (the lasso, one per row) by monotone
FISTA (Beck & Teboulle, 2009): a gradient step on the squared error and a soft
threshold for the L1 term, with momentum, never accepting a step that raises
the objective. :class:`DictionaryLearning` alternates it with block-coordinate
descent on the atoms, each atom the exact minimiser of its block projected on
the unit ball, so neither half-step raises the objective.
"""

from __future__ import annotations

from typing import Any

import torch

from companion._validation import (
    check_array,
    check_is_fitted,
    check_positive_int,
    to_input_kind,
    validate_data,
)
from companion.classical._base import ParamsMixin
from companion.runtime import resolve_seed


def soft_threshold(z: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """sign(z) max(|z| - t, 0), elementwise: the proximal map of t‖·‖₁."""
    return z.sign() * (z.abs() - t).clamp_min(0)


def lasso_objective(X: torch.Tensor, codes: torch.Tensor, dictionary: torch.Tensor, alpha: float):
    """½ ‖x - a D‖² + α ‖a‖₁ for every row: (n,)."""
    return 0.5 * (X - codes @ dictionary).pow(2).sum(1) + alpha * codes.abs().sum(1)


def _fista(X, D, alpha, init, max_iter, tol):
    """Monotone FISTA on all rows at once; returns codes (n, k) and the iterations used."""
    gram, target = D @ D.T, X @ D.T  # (k, k), (n, k)
    lipschitz = torch.linalg.eigvalsh(gram.double()).max().clamp_min(1e-12).item()
    step = 1.0 / lipschitz
    codes = init.clone()
    best = lasso_objective(X, codes, D, alpha)  # (n,)
    y, t = codes.clone(), 1.0
    for iteration in range(1, max_iter + 1):
        z = soft_threshold(y - step * (y @ gram - target), step * alpha)
        value = lasso_objective(X, z, D, alpha)
        better = (value <= best).unsqueeze(1)  # (n, 1): keep z only where it lowers the objective
        previous = codes
        codes = torch.where(better, z, codes)
        best = torch.minimum(value, best)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        y = codes + (t / t_next) * (z - codes) + ((t - 1) / t_next) * (codes - previous)
        t = t_next
        change = (z - previous).abs().max()  # the proposed step: 0 only at a fixed point
        if change <= tol * codes.abs().max().clamp_min(1e-12):
            return codes, iteration
    return codes, max_iter


def sparse_encode(
    X: Any, dictionary: Any, *, alpha: float = 1.0, max_iter: int = 1000, tol: float = 1e-6
) -> Any:
    """Lasso codes of X (n, d) in ``dictionary`` (k, d): argmin_a ½‖x - a D‖² + α‖a‖₁ per row.

    Returns codes (n, k) of X's kind (NumPy in, NumPy out; tensors on their device).
    The same problem as scikit-learn's ``sparse_encode(X, D, algorithm="lasso_cd",
    alpha=alpha)``.
    """
    X, kind = check_array(X, name="X")
    D, _ = check_array(dictionary, name="dictionary", dtype=X.dtype)
    D = D.to(X.device)
    if D.shape[1] != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features but the dictionary's atoms have {D.shape[1]}; "
            "give atoms as rows of the same width as X."
        )
    if not alpha >= 0:
        raise ValueError(f"alpha={alpha} must be >= 0; it weighs the L1 penalty.")
    max_iter = check_positive_int(max_iter, name="max_iter")
    init = torch.zeros(X.shape[0], D.shape[0], dtype=X.dtype, device=X.device)
    codes, _ = _fista(X, D, float(alpha), init, max_iter, tol)
    return to_input_kind(codes, kind)


class DictionaryLearning(ParamsMixin):
    """Learn a dictionary whose atoms code the data sparsely.

    Parameters
    ----------
    n_components : int
        Number of atoms k (more than the data's width gives an overcomplete dictionary).
    alpha : float
        Weight of the L1 penalty on the codes.
    max_iter : int
        Alternations of the coding and the dictionary steps.
    code_iter : int
        FISTA iterations per coding step (warm-started from the last codes).
    tol : float
        Stop when the objective falls by less than this fraction in an alternation.
    random_state : int or None
        Seed of the initial dictionary (random data rows, normalised).

    Fitted attributes (the kind, dtype and device of the data)
    ----------------------------------------------------------
    components_ : (k, d) atoms, rows of norm at most 1
    objective_ : list of float, ½‖X - A D‖²_F / n + α ‖A‖₁ / n after every alternation
    n_iter_, n_features_in_ : int
    """

    def __init__(
        self,
        n_components: int = 64,
        *,
        alpha: float = 1.0,
        max_iter: int = 30,
        code_iter: int = 50,
        tol: float = 1e-5,
        random_state: int | None = None,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.code_iter = code_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> DictionaryLearning:
        """Learn the atoms from X (n_samples, n_features); returns self (``y`` is ignored)."""
        self._fit(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """Fit, then return the codes of X in the learned dictionary, (n_samples,
        n_components): the same as ``fit(X).transform(X)``."""
        X, kind = self._fit(X)
        return to_input_kind(self._encode(X), kind)

    def _fit(self, X: Any):
        k = check_positive_int(self.n_components, name="n_components")
        max_iter = check_positive_int(self.max_iter, name="max_iter")
        code_iter = check_positive_int(self.code_iter, name="code_iter")
        if not self.alpha >= 0:
            raise ValueError(f"alpha={self.alpha} must be >= 0; it weighs the L1 penalty.")
        X, kind = validate_data(self, X, reset=True)
        n = X.shape[0]
        if n < 2:
            raise ValueError(
                f"DictionaryLearning needs several samples, got n_samples={n}; give more data."
            )
        generator = torch.Generator().manual_seed(resolve_seed(self.random_state))
        rows = torch.randint(0, n, (k,), generator=generator)
        noise = 1e-3 * torch.randn(k, X.shape[1], generator=generator, dtype=torch.float64)
        D = X[rows.to(X.device)] + noise.to(X.dtype).to(X.device) * X.std().clamp_min(1e-12)
        D = D / D.norm(dim=1, keepdim=True).clamp_min(1.0e-12)  # (k, d), unit atoms
        codes = torch.zeros(n, k, dtype=X.dtype, device=X.device)
        alpha = float(self.alpha)
        self.objective_ = []
        for self.n_iter_ in range(1, max_iter + 1):
            codes, _ = _fista(X, D, alpha, codes, code_iter, 0.0)
            D = self._update_dictionary(X, codes, D)
            value = lasso_objective(X, codes, D, alpha).double().mean().item()
            previous = self.objective_[-1] if self.objective_ else None
            self.objective_.append(value)
            if previous is not None and previous - value <= self.tol * abs(previous):
                break
        self.components_ = to_input_kind(D, kind)
        return X, kind

    @staticmethod
    def _update_dictionary(X, codes, D):
        """One sweep of block-coordinate descent: atom j is the exact minimiser of
        ½‖R_j - a_j d_jᵀ‖² with R_j the residual without atom j, projected on ‖d_j‖ ≤ 1."""
        D = D.clone()
        residual = X - codes @ D  # (n, d)
        for j in range(D.shape[0]):
            a = codes[:, j]  # (n,)
            weight = a @ a
            if weight <= 0:
                continue  # an unused atom stays where it is
            residual += torch.outer(a, D[j])
            atom = (a @ residual) / weight
            D[j] = atom / atom.norm().clamp_min(1.0)
            residual -= torch.outer(a, D[j])
        return D

    def transform(self, X: Any) -> Any:
        """Sparse codes of X in the learned dictionary, (n_samples, n_components)."""
        check_is_fitted(self, "components_", method="transform")
        Xt, kind = validate_data(self, X, reset=False)
        return to_input_kind(self._encode(Xt), kind)

    def _encode(self, Xt: torch.Tensor) -> torch.Tensor:
        """FISTA codes (n, n_components) of validated rows in the final dictionary."""
        D, _ = check_array(self.components_, name="components_", dtype=Xt.dtype)
        codes, _ = _fista(
            Xt,
            D.to(Xt.device),
            float(self.alpha),
            torch.zeros(Xt.shape[0], D.shape[0], dtype=Xt.dtype, device=Xt.device),
            10 * check_positive_int(self.code_iter, name="code_iter"),
            1e-7,
        )
        return codes

    def inverse_transform(self, codes: Any) -> Any:
        """Reconstructions codes @ components_, (n_samples, n_features)."""
        check_is_fitted(self, "components_", method="inverse_transform")
        A, kind = check_array(codes, name="codes")
        D, _ = check_array(self.components_, name="components_", dtype=A.dtype)
        if A.shape[1] != D.shape[0]:
            raise ValueError(
                f"codes have {A.shape[1]} columns but the dictionary has {D.shape[0]} atoms; "
                "pass codes from transform."
            )
        return to_input_kind(A @ D.to(A.device), kind)

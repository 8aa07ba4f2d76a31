"""``get_params`` / ``set_params`` read from ``__init__``, as scikit-learn's ``BaseEstimator`` does.

An estimator stores every ``__init__`` argument unchanged under its own name
and does its checking in ``fit``; the mixin then lists the parameters from
the signature, so ``sklearn.base.clone``, grid searches and
``sklearn.pipeline.Pipeline`` can copy and configure it.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar


class ParamsMixin:
    """``get_params``, ``set_params`` and a short ``repr`` from the ``__init__`` signature.

    Class attributes
    ----------------
    input_domain : {"real", "binary"}
        What ``fit`` accepts: any real matrix, or entries in {0, 1}. Read by
        the estimator checks to make suitable data.
    estimator_type : str or None
        scikit-learn's kind of estimator ("clusterer", "density_estimator", ...).
    """

    input_domain: ClassVar[str] = "real"
    estimator_type: ClassVar[str | None] = None

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The keyword parameters of ``__init__``, sorted (no ``*args`` or ``**kwargs``)."""
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for parameter in inspect.signature(init).parameters.values():
            if parameter.name == "self":
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(
                    f"{cls.__name__}.__init__ takes *{parameter.name}; estimators must name "
                    "every parameter so that get_params can list them."
                )
            names.append(parameter.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator, ``{name: value}``.

        With ``deep=True`` the parameters of nested estimators are added as
        ``<name>__<parameter>``.
        """
        params = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            params[name] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{k}", v) for k, v in value.get_params().items())
        return params

    def set_params(self, **params: Any) -> ParamsMixin:
        """Set parameters (``<name>__<parameter>`` for nested estimators); returns self."""
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"{key!r} is not a parameter of {type(self).__name__}; "
                    f"valid parameters are {valid}."
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __sklearn_tags__(self) -> Any:
        """Tags for scikit-learn >= 1.6 (its ``Pipeline`` asks for them); imported only then."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=self.estimator_type,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"])
            if hasattr(self, "transform")
            else None,
            input_tags=InputTags(positive_only=self.input_domain == "binary"),
        )

    def __repr__(self) -> str:
        """``Class(param=value, ...)`` listing the parameters that differ from their defaults."""
        signature = inspect.signature(type(self).__init__)
        changed = []
        for name in self._get_param_names():
            value, default = getattr(self, name, None), signature.parameters[name].default
            if not _same(value, default):
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


def _same(value: Any, default: Any) -> bool:
    """Whether a parameter still has its default (arrays compare by identity)."""
    if value is default:
        return True
    try:
        return bool(type(value) is type(default) and value == default)
    except (TypeError, ValueError, RuntimeError):  # arrays and tensors have no single truth
        return False

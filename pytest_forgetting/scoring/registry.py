"""Named scorers for generation suites: built-ins plus those plugins register via a hook."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

if TYPE_CHECKING:
    from pytest_forgetting.scoring.scorers import Scorer


class ScorerRegistry:
    """A name -> scorer mapping with helpful errors for unknown names."""

    def __init__(self) -> None:
        self._scorers: dict[str, "Scorer"] = {}

    def add(self, name: str, scorer: Union["Scorer", Callable[..., Any]], **declaration: Any) -> None:
        """Register ``scorer`` under ``name`` (a later registration replaces an earlier one).

        ``scorer`` is a :class:`~pytest_forgetting.scoring.scorers.Scorer`, or a function
        declared by ``declaration`` (``higher_is_better=``, ``binary=``, ``unit=``, ``low=``,
        ``high=``, ``tolerance=``; by default higher-is-better, continuous, in [0, 1]).
        """
        from pytest_forgetting.scoring.scorers import Scorer

        if isinstance(scorer, Scorer):
            if declaration:
                raise TypeError(f"scorer {name!r} is already declared; give its declaration to Scorer(...) only")
            self._scorers[name] = scorer if scorer.name == name else scorer.renamed(name)
            return
        if not callable(scorer):
            raise TypeError(f"scorer {name!r} must be callable, got {type(scorer).__name__}")
        self._scorers[name] = Scorer(scorer, name=name, **declaration)

    def get(self, name: str) -> "Scorer":
        """The scorer registered as ``name``; a KeyError names close matches otherwise."""
        try:
            return self._scorers[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._scorers, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise KeyError(
                f"unknown scorer {name!r}.{hint} Available: {', '.join(sorted(self._scorers))}"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._scorers)

    def __contains__(self, name: object) -> bool:
        return name in self._scorers


def build_registry(hook: Optional[Any] = None) -> ScorerRegistry:
    """A registry with the built-in scorers, then those plugins add through ``hook``."""
    from pytest_forgetting.scoring.scorers import register_builtin_scorers

    registry = ScorerRegistry()
    register_builtin_scorers(registry)
    if hook is not None:
        hook.pytest_forgetting_register_scorers(registry=registry)
    return registry

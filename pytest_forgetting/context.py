"""The ``forgetting`` fixture's object: the model pair plus this test's capability settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import pytest

from pytest_forgetting import settings
from pytest_forgetting.markers import CapabilitySpec, capability_of

if TYPE_CHECKING:
    from pytest_forgetting.models.handle import ModelHandle
    from pytest_forgetting.models.session import ModelPair


class Forgetting:
    """What a forgetting test works with.

    Attributes:
        capability: the test's validated ``capability`` marker, or None.
        defaults: the session's default tolerance, alpha and policy.
    """

    def __init__(
        self,
        *,
        pair: Callable[[], "ModelPair"],
        loaded: Callable[[str], "ModelHandle"],
        node: pytest.Item,
        config: pytest.Config,
    ) -> None:
        self._pair = pair
        self._loaded = loaded
        self.node = node
        self.config = config
        self.capability: Optional[CapabilitySpec] = capability_of(node)
        self.defaults = settings.decision_defaults(config)

    @property
    def base(self) -> "ModelHandle":
        """The base model handle (loaded once per session, on first use)."""
        return self._loaded("base")

    @property
    def tuned(self) -> "ModelHandle":
        """The tuned model handle (loaded once per session, on first use)."""
        return self._loaded("tuned")

    @property
    def pair(self) -> "ModelPair":
        """The session's :class:`ModelPair` (specs and load options)."""
        return self._pair()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"'Forgetting' object has no attribute {name!r}")

"""``nnx.Sequential``: a module that calls its layers in order."""

from __future__ import annotations

from typing import Any, Callable, TYPE_CHECKING

from nnx.seed_compat import Module
from nnx.containers import List

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import SequentialState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class Sequential(Module):
    """Calls its layers in order; extra arguments go to the first layer only."""

    def __init__(self, *layers: Callable[..., Any]) -> None:
        self.layers = List(layers)

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        for layer in self.layers:
            x = layer(x, *args, **kwargs)
            args, kwargs = (), {}
        return x

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[Sequential, SequentialState]

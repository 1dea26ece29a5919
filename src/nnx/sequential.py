"""``nnx.Sequential``: a module that calls its layers in order."""

from __future__ import annotations

from typing import Any, Callable

from nnx.compat import Module
from nnx.containers import List


class Sequential(Module):
    """Calls its layers in order; extra arguments go to the first layer only."""

    def __init__(self, *layers: Callable[..., Any]) -> None:
        self.layers = List(layers)

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        for layer in self.layers:
            x = layer(x, *args, **kwargs)
            args, kwargs = (), {}
        return x

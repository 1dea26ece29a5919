"""A module may keep a filter as a plain attribute (WeightNorm does): ``Filter`` is a
recursive alias, and the plugin must classify it (static) without recursing forever."""

import nnx
from nnx.filters import Filter


class Picker(nnx.Module):
    def __init__(self, wanted: Filter) -> None:
        self.wanted = wanted
        self.count = nnx.Param(0.0)


picker = Picker((nnx.Param, "batch_stats"))
graphdef, params = nnx.split(picker, nnx.Param)
assert params.count == 0.0

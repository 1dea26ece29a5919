"""Full names of the nnx objects the plugin recognises (strings only: nothing is imported)."""

from __future__ import annotations

OBJECT = "nnx.objects.Object"
MODULE_BASE = "nnx.module.ModuleBase"
VARIABLE = "nnx.variables.Variable"
STATE = "nnx.state.State"
ITEMS = "nnx.state.Items"
RNGS = "nnx.rngs.Rngs"
RNG_STREAM = "nnx.rngs.RngStream"
RNG_KEY = "nnx.variables.RngKey"
RNG_COUNT = "nnx.variables.RngCount"
#: ``lookup(COLLECTION_PREFIX + "params")`` finds the kind ``nnx.ref("params")`` creates.
COLLECTION_PREFIX = "collection:"
GRAPHDEF = "nnx.graphdef.GraphDef"

#: Field declarators: name -> the Variable kind they create (None: by argument / static).
DECLARATORS = {
    "nnx.fields.param": "nnx.variables.Param",
    "nnx.fields.batch_stat": "nnx.variables.BatchStat",
    "nnx.fields.variable": None,
    "nnx.fields.ref": None,
    "nnx.fields.static": None,
}

NOT, ALL, ANY, PATH_CONTAINS = "nnx.filters.Not", "nnx.filters.All", "nnx.filters.Any", "nnx.filters.PathContains"
BUFFERS = "nnx.filters.buffers"
FILTER_BASE = "nnx.filters.FilterBase"

#: Functions whose positional arguments after the node are filters, and whether
#: every leaf must be matched (``split``) or they just select.
FILTER_FUNCTIONS = {"nnx.graph.split": True, "nnx.graph.state": False, "nnx.graph.pop": False}
FILTER_CONSTRUCTORS = (NOT, ALL, ANY)

ARRAY_TYPES = ("jax._src.basearray.Array", "numpy.ndarray")
CONTAINERS = ("builtins.list", "builtins.dict", "builtins.tuple", "nnx.containers.List", "nnx.containers.Dict")

METADATA_FIELDS = "nnx_fields"
METADATA_KIND = "nnx_kind"

#: Transforms and constructors with a ``wrt=`` filter: name -> where the module comes from
#: ("fun": the differentiated function's argument ``argnums``; "model": the ``model`` argument).
WRT_CALLS = {
    "nnx.transforms.autodiff.grad": "fun",
    "nnx.transforms.autodiff.value_and_grad": "fun",
    "nnx.optim.Optimizer": "model",
}

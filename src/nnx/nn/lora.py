"""Low-rank adaptation: ``LoRAParam``, ``LoRA`` and ``LoRALinear``.

A LoRA adapter adds ``x @ lora_a @ lora_b`` (rank ``r`` much smaller than the
layer) to a layer's output. Its weights are ``LoRAParam`` cells, a subkind of
``Param``: ``nnx.Optimizer(model, tx, wrt=nnx.LoRAParam)`` trains only the
adapters, ``wrt=nnx.Param`` trains everything, and
``nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))`` selects the frozen base.
``lora_b`` starts at zero, so adding an adapter does not change the model.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Mapping, TYPE_CHECKING, cast, overload

from typing_extensions import TypeVar

import jax
import jax.numpy as jnp

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype, PromoteDtypeFn, promote_dtype
from nnx.nn.linear import Linear
from nnx.nn.metadata import NO_METADATA, Initializer, record_metadata
from nnx.rngs import Rngs
from nnx.variables import LoRAParam, Param, Variable

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import LoRAState, LoRALinearState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf

#: The cell kind of a LoRA's adapter weights: ``LoRAParam`` unless ``lora_param_type`` says otherwise.
K = TypeVar("K", bound=Variable[jax.Array], default=LoRAParam)


class LoRA(Module, Generic[K]):
    """``x @ lora_a @ lora_b`` (+ ``base_module(x, **kwargs)`` when one is given).

    ``LoRA(d_in, rank, d_out, base_module=layer, rngs=rngs)`` wraps an
    existing layer for model surgery: ``model.fc = nnx.LoRA(..., base_module=model.fc)``;
    keyword arguments of a call go on to the base module (without one they
    are unused, as in Flax, so one call site serves both). ``lora_param_type``
    is the cell kind of the adapter weights (``LoRAParam``; ``nnx.Param``
    makes them ordinary parameters: the checkers then see
    ``LoRA[nnx.Param[jax.Array]]`` and ``lora_a: nnx.Param[jax.Array]``; the typed
    State parts (plugin and stubs, one per class) follow the default kind).
    ``promote_dtype`` casts ``(x, lora_a,
    lora_b)``; ``a_metadata``/``b_metadata`` are set on the cells.
    """

    lora_a: K
    lora_b: K

    # The kind the checkers see follows lora_param_type: LoRAParam by default, Param[jax.Array]
    # for the bare nnx.Param (whose value type a class object does not carry), else the kind given.
    @overload
    def __init__(
        self: LoRA[LoRAParam],
        in_features: int,
        lora_rank: int,
        out_features: int,
        *,
        base_module: Callable[..., jax.Array] | None = None,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        a_initializer: Initializer = initializers.he_uniform(),
        b_initializer: Initializer = initializers.zeros,
        lora_param_type: type[LoRAParam] = ...,
        promote_dtype: PromoteDtypeFn = promote_dtype,
        a_metadata: Mapping[str, Any] = NO_METADATA,
        b_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: LoRA[Param[jax.Array]],
        in_features: int,
        lora_rank: int,
        out_features: int,
        *,
        base_module: Callable[..., jax.Array] | None = None,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        a_initializer: Initializer = initializers.he_uniform(),
        b_initializer: Initializer = initializers.zeros,
        lora_param_type: type[Param[Any]],
        promote_dtype: PromoteDtypeFn = promote_dtype,
        a_metadata: Mapping[str, Any] = NO_METADATA,
        b_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        in_features: int,
        lora_rank: int,
        out_features: int,
        *,
        base_module: Callable[..., jax.Array] | None = None,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        a_initializer: Initializer = initializers.he_uniform(),
        b_initializer: Initializer = initializers.zeros,
        lora_param_type: type[K],
        promote_dtype: PromoteDtypeFn = promote_dtype,
        a_metadata: Mapping[str, Any] = NO_METADATA,
        b_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None: ...
    def __init__(
        self,
        in_features: int,
        lora_rank: int,
        out_features: int,
        *,
        base_module: Callable[..., jax.Array] | None = None,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        a_initializer: Initializer = initializers.he_uniform(),
        b_initializer: Initializer = initializers.zeros,
        lora_param_type: type[Variable[Any]] = LoRAParam,
        promote_dtype: PromoteDtypeFn = promote_dtype,
        a_metadata: Mapping[str, Any] = NO_METADATA,
        b_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("LoRA", rngs, ctx)
        if not (isinstance(lora_param_type, type) and issubclass(lora_param_type, Variable)):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
            raise TypeError(
                f"LoRA(lora_param_type={lora_param_type!r}): expected a Variable kind such as "
                "nnx.LoRAParam or nnx.Param."
            )
        self.in_features = in_features
        self.lora_rank = lora_rank
        self.out_features = out_features
        self.base_module = base_module
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.lora_param_type = lora_param_type
        self.promote_dtype = promote_dtype
        self.lora_a = cast(K, lora_param_type(a_initializer(rngs.params(), (in_features, lora_rank), param_dtype)))
        record_metadata(self, "lora_a", a_initializer, a_metadata)
        self.lora_b = cast(K, lora_param_type(b_initializer(rngs.params(), (lora_rank, out_features), param_dtype)))
        record_metadata(self, "lora_b", b_initializer, b_metadata)

    def __call__(self, x: jax.Array, **kwargs: Any) -> jax.Array:
        """The adapter's output, plus ``base_module(x, **kwargs)`` when there is a base module
        (``kwargs`` are unused without one)."""
        x, a, b = self.promote_dtype((x, self.lora_a[...], self.lora_b[...]), dtype=self.dtype)
        out: jax.Array = x @ a @ b
        if self.base_module is not None:
            out = out + self.base_module(x, **kwargs)
        return out

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[LoRA, LoRAState]


class LoRALinear(Linear):
    """A ``Linear`` layer with a LoRA adapter (``self.lora``) added to its output.

    ``LoRALinear.from_linear(layer, lora_rank=4, rngs=rngs)`` builds one that
    shares ``layer``'s kernel and bias cells: the trained weights are reused,
    not copied. ``lora_param_type``, ``lora_promote_dtype`` (the adapter's
    ``promote_dtype``) and ``a_metadata``/``b_metadata`` go to the adapter.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        lora_rank: int,
        lora_dtype: Dtype | None = None,
        lora_param_dtype: Dtype = jnp.float32,
        a_initializer: Initializer = initializers.he_uniform(),
        b_initializer: Initializer = initializers.zeros,
        lora_param_type: type[Variable[jax.Array]] = LoRAParam,
        lora_promote_dtype: PromoteDtypeFn = promote_dtype,
        a_metadata: Mapping[str, Any] = NO_METADATA,
        b_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
        **linear_kwargs: Any,
    ) -> None:
        rngs = layer_rngs("LoRALinear", rngs, ctx)
        super().__init__(in_features, out_features, rngs=rngs, **linear_kwargs)
        self.lora = LoRA(
            in_features,
            lora_rank,
            out_features,
            dtype=lora_dtype,
            param_dtype=lora_param_dtype,
            a_initializer=a_initializer,
            b_initializer=b_initializer,
            lora_param_type=lora_param_type,
            promote_dtype=lora_promote_dtype,
            a_metadata=a_metadata,
            b_metadata=b_metadata,
            rngs=rngs,
        )

    @classmethod
    def from_linear(
        cls, linear: Linear, *, lora_rank: int, rngs: Rngs | None = None, ctx: Context | None = None, **lora_kwargs: Any
    ) -> LoRALinear:
        """A LoRALinear over the same kernel/bias cells as ``linear`` (shared, not copied)."""
        rngs = layer_rngs("LoRALinear.from_linear", rngs, ctx)
        layer = cls(
            linear.in_features,
            linear.out_features,
            lora_rank=lora_rank,
            use_bias=linear.use_bias,
            dtype=linear.dtype,
            param_dtype=linear.param_dtype,
            precision=linear.precision,
            rngs=rngs,
            **lora_kwargs,
        )
        layer.kernel = linear.kernel  # the same cells: shared, not copied
        layer.bias = linear.bias
        return layer

    def __call__(self, x: jax.Array) -> jax.Array:
        return super().__call__(x) + self.lora(x)

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[LoRALinear, LoRALinearState]  # type: ignore[assignment]  # pyright: ignore[reportIncompatibleVariableOverride]  # its own, not its base's

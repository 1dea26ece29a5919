"""``Einsum``: a layer whose kernel is contracted with the input by an einsum string."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence, TYPE_CHECKING, cast

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn.dtypes import Dtype, PromoteDtypeFn, promote_dtype
from nnx.nn.linear import default_bias_init, default_kernel_init, dot_options
from nnx.nn.metadata import NO_METADATA, Initializer, record_metadata
from nnx.rngs import Rngs
from nnx.variables import Param

#: A replacement for ``jnp.einsum``: ``op(einsum_str, x, kernel, precision=..., [preferred_element_type=...])``.
EinsumOp = Callable[..., jax.Array]
default_einsum_op = cast(EinsumOp, jnp.einsum)  # pyright: ignore[reportUnknownMemberType]  # jax: partly untyped signature

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import EinsumState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class Einsum(Module):
    """``y = einsum(einsum_str, x, kernel) + bias``.

    ``Einsum("btd,dhk->bthk", (d, h, k), (h, k), rngs=rngs)`` projects to
    attention heads. ``bias_shape`` (an int is a 1-D shape; ``None``: no bias)
    lists the sizes of the kernel axes that survive into the output, in
    output order; the bias is laid along those axes. ``...`` in the string
    stands for any number of axes, as in ``jnp.einsum``. ``einsum_op``
    replaces ``jnp.einsum``; ``preferred_element_type``, ``promote_dtype`` and
    the ``*_metadata`` arguments mean what they mean for :class:`Linear`.
    """

    kernel: Param[jax.Array]
    bias: Param[jax.Array] | None  # None without a bias

    def __init__(
        self,
        einsum_str: str,
        kernel_shape: Sequence[int],
        bias_shape: int | Sequence[int] | None = None,
        *,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        precision: lax.PrecisionLike = None,
        kernel_init: Initializer = default_kernel_init,
        bias_init: Initializer = default_bias_init,
        preferred_element_type: Dtype | None = None,
        promote_dtype: PromoteDtypeFn = promote_dtype,
        einsum_op: EinsumOp = default_einsum_op,
        kernel_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("Einsum", rngs, ctx)
        self.kernel_shape = tuple(kernel_shape)
        self.einsum_str = _checked(einsum_str, self.kernel_shape)
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.preferred_element_type = preferred_element_type
        self.promote_dtype = promote_dtype
        self.einsum_op = einsum_op
        self.use_bias = bias_shape is not None
        self.kernel = Param(kernel_init(rngs.params(), self.kernel_shape, param_dtype))
        record_metadata(self, "kernel", kernel_init, kernel_metadata)
        self.bias = None
        if bias_shape is not None:
            shape = (bias_shape,) if isinstance(bias_shape, int) else tuple(bias_shape)
            self.bias = Param(bias_init(rngs.params(), shape, param_dtype))
            record_metadata(self, "bias", bias_init, bias_metadata)

    def __call__(self, x: jax.Array, einsum_str: str | None = None) -> jax.Array:
        """Apply the layer; ``einsum_str`` replaces the constructor's string for this call."""
        spec = self.einsum_str if einsum_str is None else _checked(einsum_str, self.kernel_shape)
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = self.promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        y = self.einsum_op(spec, x, kernel, **dot_options(self.precision, self.preferred_element_type))
        if bias is not None:
            y = y + bias.reshape(_bias_layout(spec, x.ndim, self.kernel_shape))
        return y

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[Einsum, EinsumState]


def _checked(einsum_str: str, kernel_shape: tuple[int, ...]) -> str:
    """``einsum_str`` without spaces, after checking it has two operands, an output, and a
    kernel spec that can name ``kernel_shape``."""
    spec = einsum_str.replace(" ", "")
    operands, arrow, _ = spec.partition("->")
    if not arrow or operands.count(",") != 1:
        raise ValueError(
            f"Einsum({einsum_str!r}): expected two operands and an explicit output, "
            "like 'btd,dk->btk' (input first, kernel second)."
        )
    kernel_spec = operands.split(",")[1]
    named = len(kernel_spec.replace("...", ""))
    fits = named <= len(kernel_shape) if "..." in kernel_spec else named == len(kernel_shape)
    if not fits:
        raise ValueError(
            f"Einsum({einsum_str!r}): the kernel spec {kernel_spec!r} has {named} axes but "
            f"kernel_shape={kernel_shape} has {len(kernel_shape)}; make them agree."
        )
    return spec


Label = str | tuple[str, int]  # an axis letter, or ("...", k): the k-th axis of "..." from its end


def _labels(spec: str, ndim: int) -> list[Label]:
    """One label per axis of an operand with ``ndim`` axes; ``...`` axes are numbered from the
    right, so the same number in two operands is the same (broadcast) axis, as in einsum."""
    if "..." not in spec:
        return list(spec)
    before, after = spec.split("...")
    n = ndim - len(before) - len(after)
    return [*before, *(("...", n - 1 - j) for j in range(n)), *after]


def _bias_layout(spec: str, x_ndim: int, kernel_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape that lays the bias along the output's kernel axes: each output axis that
    comes from the kernel has the kernel's size there, every other axis has size 1."""
    operands, _, output = spec.partition("->")
    x_spec, kernel_spec = operands.split(",")
    x_labels = _labels(x_spec, x_ndim)
    kernel_labels = _labels(kernel_spec, len(kernel_shape))
    sizes = dict(zip(kernel_labels, kernel_shape))
    ellipsis = max(
        sum(isinstance(label, tuple) for label in x_labels),
        sum(isinstance(label, tuple) for label in kernel_labels),
    )
    out_ndim = len(output.replace("...", "")) + (ellipsis if "..." in output else 0)
    return tuple(sizes.get(label, 1) for label in _labels(output, out_ndim))

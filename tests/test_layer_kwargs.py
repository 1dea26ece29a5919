"""The keyword arguments Flax's layers take, checked against computations written out here.

``preferred_element_type``, ``promote_dtype``, ``dot_general``/``einsum_op``/
``conv_general_dilated``, the ``*_metadata`` arguments, ``Einsum``'s bias
layout, causal and grouped-query attention, ``keep_rngs``, ``LoRA``'s
``lora_param_type`` and call keywords, and the recurrent cells' ``carry_init``.
"""

from __future__ import annotations

from typing import Any, Callable

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from jax import lax
from parity import assert_close

import nnx
from nnx.nn.dtypes import promote_dtype
from nnx.nn.einsum import default_einsum_op
from nnx.nn.linear import default_dot_general

KEY = jax.random.key(0)
F16_TOL = {"atol": 1e-5, "rtol": 1e-5}


def normal(seed: int, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), shape).astype(dtype)


def as64(a: Any) -> np.ndarray[Any, Any]:
    return np.asarray(a, dtype=np.float64)


# -- preferred_element_type ---------------------------------------------------------------
# With float16 inputs and parameters and preferred_element_type=float32, the products
# of float16 values accumulate in float32: the result is the float64 product of the
# float16 values to float32 precision, and has dtype float32.


def test_linear_preferred_element_type_accumulates_in_that_dtype() -> None:
    layer = nnx.Linear(
        64, 8, dtype=jnp.float16, param_dtype=jnp.float16, preferred_element_type=jnp.float32, rngs=nnx.Rngs(0)
    )
    x = normal(1, (4, 64), jnp.float16)
    y = layer(x)
    assert y.dtype == jnp.float32
    assert layer.bias is not None
    expected = as64(x) @ as64(layer.kernel[...]) + as64(layer.bias[...])
    assert_close(y, expected, **F16_TOL)
    plain = nnx.Linear(64, 8, dtype=jnp.float16, param_dtype=jnp.float16, rngs=nnx.Rngs(0))
    assert plain(x).dtype == jnp.float16


def test_linear_general_preferred_element_type() -> None:
    layer = nnx.LinearGeneral(
        (4, 16), 3, axis=(-2, -1), param_dtype=jnp.float16, preferred_element_type=jnp.float32, rngs=nnx.Rngs(0)
    )
    x = normal(2, (5, 4, 16), jnp.float16)
    y = layer(x)
    assert y.dtype == jnp.float32
    assert layer.bias is not None
    expected = np.einsum("bij,ijo->bo", as64(x), as64(layer.kernel[...])) + as64(layer.bias[...])
    assert_close(y, expected, **F16_TOL)


def test_einsum_preferred_element_type() -> None:
    layer = nnx.Einsum(
        "btd,dhk->bthk", (32, 2, 3), (2, 3), param_dtype=jnp.float16, preferred_element_type=jnp.float32,
        bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0),
    )  # fmt: skip
    x = normal(3, (2, 5, 32), jnp.float16)
    y = layer(x)
    assert y.dtype == jnp.float32
    assert layer.bias is not None
    expected = np.einsum("btd,dhk->bthk", as64(x), as64(layer.kernel[...])) + as64(layer.bias[...])
    assert_close(y, expected, **F16_TOL)


def test_conv_preferred_element_type() -> None:
    layer = nnx.Conv(
        8, 4, (3,), padding="VALID", param_dtype=jnp.float16, preferred_element_type=jnp.float32, rngs=nnx.Rngs(0)
    )
    x = normal(4, (2, 10, 8), jnp.float16)
    y = layer(x)
    assert y.dtype == jnp.float32
    assert layer.bias is not None
    kernel = as64(layer.kernel[...])  # (3, 8, 4)
    windows = np.stack([as64(x)[:, t : t + 3, :] for t in range(8)], axis=1)  # (2, 8, 3, 8)
    expected = np.einsum("btki,kio->bto", windows, kernel) + as64(layer.bias[...])
    assert_close(y, expected, **F16_TOL)


def test_conv_transpose_preferred_element_type() -> None:
    layer = nnx.ConvTranspose(
        6, 4, (3,), padding="VALID", param_dtype=jnp.float16, preferred_element_type=jnp.float32, rngs=nnx.Rngs(0)
    )
    x = normal(5, (2, 5, 6), jnp.float16)
    y = layer(x)
    assert y.dtype == jnp.float32 and y.shape == (2, 7, 4)
    assert layer.bias is not None
    # A stride-1 VALID transposed convolution scatters each input step over 3 outputs;
    # the kernel is not flipped (lax.conv_transpose's convention), so tap k lands at t + 2 - k.
    kernel, xs = as64(layer.kernel[...]), as64(x)
    expected = np.zeros((2, 7, 4))
    for t in range(5):
        for k in range(3):
            expected[:, t + 2 - k, :] += xs[:, t, :] @ kernel[k]
    assert_close(y, expected + as64(layer.bias[...]), **F16_TOL)


def test_a_replacement_product_gets_preferred_element_type_only_when_set() -> None:
    seen: list[dict[str, Any]] = []

    def recording(*args: Any, **kwargs: Any) -> jax.Array:
        seen.append(kwargs)
        return default_dot_general(*args, **kwargs)

    x = jnp.ones((2, 3))
    nnx.Linear(3, 4, dot_general=recording, rngs=nnx.Rngs(0))(x)
    nnx.Linear(3, 4, dot_general=recording, preferred_element_type=jnp.float32, rngs=nnx.Rngs(0))(x)
    assert seen == [{"precision": None}, {"precision": None, "preferred_element_type": jnp.float32}]


def test_conv_general_dilated_is_replaceable() -> None:
    calls: list[tuple[int, ...]] = []

    def recording(lhs: jax.Array, rhs: jax.Array, **kwargs: Any) -> jax.Array:
        calls.append(tuple(rhs.shape))
        return lax.conv_general_dilated(lhs, rhs, **kwargs)

    layer = nnx.Conv(2, 3, (3, 3), conv_general_dilated=recording, rngs=nnx.Rngs(0))
    assert layer(jnp.ones((1, 5, 5, 2))).shape == (1, 5, 5, 3)
    assert calls == [(3, 3, 2, 3)]


# -- promote_dtype --------------------------------------------------------------------------


def test_promote_dtype_sees_the_arrays_and_its_result_is_used() -> None:
    # The hook gets (x, scale, bias) and the layer's dtype; whatever it returns is what
    # the layer computes with (here: scale doubled, bias shifted by one).
    received: list[tuple[tuple[Any, ...], Any]] = []

    def hook(arrays: tuple[Any, ...], *, dtype: Any = None) -> tuple[Any, ...]:
        received.append((tuple(None if a is None else a.shape for a in arrays), dtype))
        x, scale, bias = arrays
        return x, scale * 2.0, bias + 1.0

    x = normal(6, (3, 8))
    y = nnx.LayerNorm(8, epsilon=1e-6, promote_dtype=hook)(x)
    assert received == [(((3, 8), (8,), (8,)), None)]
    xs = as64(x)
    centred = xs - xs.mean(-1, keepdims=True)
    expected = centred / np.sqrt(centred.var(-1, keepdims=True) + 1e-6) * 2.0 + 1.0
    assert_close(y, expected, atol=1e-5)


def unchanged(arrays: tuple[Any, ...], **kwargs: Any) -> tuple[Any, ...]:
    return arrays


def test_identity_promotion_keeps_the_statistics_of_the_unrounded_input() -> None:
    # dtype=float16 with the default promotion rounds x to float16 before the statistics;
    # with an identity hook the statistics see the float32 input (what Linen does).
    x = 100.0 + normal(7, (4, 16))
    identity = nnx.RMSNorm(16, dtype=jnp.float16, promote_dtype=unchanged)
    default = nnx.RMSNorm(16, dtype=jnp.float16)
    for layer, source in ((identity, as64(x)), (default, as64(x.astype(jnp.float16)))):
        y = layer(x)
        assert y.dtype == jnp.float16
        expected = source / np.sqrt((source**2).mean(-1, keepdims=True) + 1e-6)
        assert_close(y, expected, atol=2e-3, rtol=2e-3)


MAKERS: list[Callable[[Any], Any]] = [
        lambda p: nnx.BatchNorm(4, promote_dtype=p),
        lambda p: nnx.GroupNorm(4, num_groups=2, promote_dtype=p),
        lambda p: nnx.InstanceNorm(4, promote_dtype=p),
        lambda p: nnx.Embed(5, 4, promote_dtype=p, rngs=nnx.Rngs(0)),
        lambda p: nnx.Conv(4, 4, (1,), promote_dtype=p, rngs=nnx.Rngs(0)),
        lambda p: nnx.ConvTranspose(4, 4, (1,), promote_dtype=p, rngs=nnx.Rngs(0)),
        lambda p: nnx.Einsum("...i,io->...o", (4, 4), promote_dtype=p, rngs=nnx.Rngs(0)),
        lambda p: nnx.LinearGeneral(4, 4, promote_dtype=p, rngs=nnx.Rngs(0)),
        lambda p: nnx.LoRA(4, 2, 4, promote_dtype=p, rngs=nnx.Rngs(0)),
]  # fmt: skip


@pytest.mark.parametrize("make", MAKERS)
def test_every_layer_calls_its_promote_dtype(make: Callable[[Any], Any]) -> None:
    calls: list[int] = []

    def hook(arrays: tuple[Any, ...], *, dtype: Any = None) -> tuple[Any, ...]:
        calls.append(len(arrays))
        return promote_dtype(arrays, dtype=dtype)

    layer = make(hook)
    x = jnp.arange(4) if isinstance(layer, nnx.Embed) else jnp.ones((2, 3, 4))
    layer(x)
    assert calls, "promote_dtype was never called"


@given(
    st.lists(st.sampled_from(["float16", "bfloat16", "float32", "int32", "int8", "bool", None]), min_size=1, max_size=4)
)
@settings(max_examples=40, deadline=None)
def test_promote_dtype_gives_one_inexact_dtype_and_keeps_nones(dtypes: list[str | None]) -> None:
    arrays = tuple(None if d is None else jnp.zeros((2,), d) for d in dtypes)
    if all(a is None for a in arrays):
        return
    out = promote_dtype(arrays)
    assert [o is None for o in out] == [a is None for a in arrays]
    kinds = {o.dtype for o in out if o is not None}
    assert len(kinds) == 1 and jnp.issubdtype(kinds.pop(), jnp.inexact)


def test_promote_dtype_rejects_an_integer_target() -> None:
    with pytest.raises(ValueError, match="not a float or complex dtype"):
        promote_dtype((jnp.ones(2),), dtype=jnp.int32)


def test_use_fast_variance_both_ways_match_the_two_pass_variance() -> None:
    x = 50.0 + normal(8, (6, 32))
    xs = as64(x)
    expected = (xs - xs.mean(-1, keepdims=True)) / np.sqrt(xs.var(-1, keepdims=True) + 1e-6)
    for fast in (True, False):
        assert_close(nnx.LayerNorm(32, use_fast_variance=fast)(x), expected, atol=2e-3)
    # RMSNorm takes the flag too; it has no mean to subtract, so both agree.
    assert_close(nnx.RMSNorm(32, use_fast_variance=False)(x), nnx.RMSNorm(32, use_fast_variance=True)(x))


# -- *_metadata -----------------------------------------------------------------------------

AXES = {"sharding": ("a", "b")}


@pytest.mark.parametrize(
    ("make", "cells"),
    [
        (lambda: nnx.Linear(2, 3, kernel_metadata=AXES, bias_metadata={"tag": 1}, rngs=nnx.Rngs(0)),
         [("kernel", AXES), ("bias", {"tag": 1})]),
        (lambda: nnx.LinearGeneral(2, 3, kernel_metadata=AXES, rngs=nnx.Rngs(0)), [("kernel", AXES)]),
        (lambda: nnx.Einsum("ab,bc->ac", (2, 3), 3, bias_metadata=AXES, rngs=nnx.Rngs(0)), [("bias", AXES)]),
        (lambda: nnx.Conv(2, 3, 3, kernel_metadata=AXES, rngs=nnx.Rngs(0)), [("kernel", AXES)]),
        (lambda: nnx.ConvTranspose(2, 3, 3, bias_metadata=AXES, rngs=nnx.Rngs(0)), [("bias", AXES)]),
        (lambda: nnx.Embed(4, 3, embedding_metadata=AXES, rngs=nnx.Rngs(0)), [("embedding", AXES)]),
        (lambda: nnx.LayerNorm(3, scale_metadata=AXES, bias_metadata={"t": 2}), [("scale", AXES), ("bias", {"t": 2})]),
        (lambda: nnx.RMSNorm(3, scale_metadata=AXES), [("scale", AXES)]),
        (lambda: nnx.BatchNorm(3, scale_metadata=AXES), [("scale", AXES)]),
        (lambda: nnx.GroupNorm(4, num_groups=2, bias_metadata=AXES), [("bias", AXES)]),
        (lambda: nnx.InstanceNorm(3, scale_metadata=AXES), [("scale", AXES)]),
        (lambda: nnx.LoRA(3, 2, 4, a_metadata=AXES, b_metadata={"t": 3}, rngs=nnx.Rngs(0)),
         [("lora_a", AXES), ("lora_b", {"t": 3})]),
    ],
)  # fmt: skip
def test_metadata_arguments_land_on_the_cells(
    make: Callable[[], nnx.Module], cells: list[tuple[str, dict[str, Any]]]
) -> None:
    layer = make()
    for name, metadata in cells:
        cell = nnx.cell(layer, name)
        for key, value in metadata.items():
            assert cell.get_metadata(key) == value
    # Metadata belongs to the GraphDef: a split/merge round trip keeps it.
    graphdef, state = nnx.split(layer)
    again = nnx.merge(graphdef, state)
    for name, metadata in cells:
        assert nnx.cell(again, name).get_metadata() == nnx.cell(layer, name).get_metadata()


def test_metadata_argument_adds_to_an_initializers_metadata() -> None:
    init = nnx.with_partitioning(nnx.initializers.lecun_normal(), ("in", "out"))
    layer = nnx.Linear(2, 3, kernel_init=init, kernel_metadata={"note": "x"}, rngs=nnx.Rngs(0))
    assert layer.kernel.get_metadata("note") == "x"
    assert layer.kernel.get_metadata("sharding") == ("in", "out")


def test_multi_head_attention_metadata_reaches_every_projection() -> None:
    layer = nnx.MultiHeadAttention(
        2, 8, normalize_qk=True, kernel_metadata={"k": 1}, out_kernel_metadata={"k": 2}, bias_metadata={"b": 1},
        query_ln_scale_metadata={"q": 1}, key_ln_scale_metadata={"q": 2}, rngs=nnx.Rngs(0),
    )  # fmt: skip
    for projection in (layer.query, layer.key, layer.value):
        assert projection.kernel.get_metadata("k") == 1
        assert projection.bias is not None and projection.bias.get_metadata("b") == 1
    assert layer.out.kernel.get_metadata("k") == 2
    assert layer.out.bias is not None and layer.out.bias.get_metadata("b") == 1  # out_bias_metadata defaults
    assert nnx.cell(layer.query_ln, "scale").get_metadata("q") == 1
    assert nnx.cell(layer.key_ln, "scale").get_metadata("q") == 2


# -- Einsum -------------------------------------------------------------------------------


def test_einsum_lays_the_bias_along_the_kernel_axes_of_the_output() -> None:
    # Output "hb": the kernel's h axis comes first, so the bias (h,) is added per row.
    layer = nnx.Einsum("bd,dh->hb", (3, 4), 4, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    x = normal(9, (5, 3))
    assert layer.bias is not None
    expected = (as64(x) @ as64(layer.kernel[...])).T + as64(layer.bias[...])[:, None]
    assert_close(layer(x), expected)


def test_einsum_with_ellipsis_and_a_call_time_string() -> None:
    layer = nnx.Einsum("d...ab,bc...->ad...c", (4, 5, 6, 7), (6, 7, 5), bias_init=nnx.initializers.normal(1.0),
                       rngs=nnx.Rngs(0))  # fmt: skip
    x = normal(10, (8, 6, 7, 3, 4))
    assert layer.bias is not None
    kernel, bias = as64(layer.kernel[...]), as64(layer.bias[...])
    expected = np.einsum("dxyab,bcxy->adxyc", as64(x), kernel) + bias
    assert_close(layer(x), expected, atol=1e-4)
    # The same kernel under another string for one call (the bias still follows the kernel axes).
    swapped = layer(x, "d...ab,bc...->ad...c")
    assert_close(swapped, expected, atol=1e-4)


def test_einsum_op_and_int_bias_shape() -> None:
    layer = nnx.Einsum("ab,bc->ac", (3, 4), 4, einsum_op=lambda *a, **k: default_einsum_op(*a, **k)[None], rngs=nnx.Rngs(0))
    assert layer.bias is not None and layer.bias.shape == (4,)
    assert layer(jnp.ones((2, 3))).shape == (1, 2, 4)
    with pytest.raises(ValueError, match="has 2 axes but kernel_shape"):
        nnx.Einsum("ab,bc->ac", (3, 4, 5), rngs=nnx.Rngs(0))


# -- attention ----------------------------------------------------------------------------


def reference_attention(q: Any, k: Any, v: Any, mask: Any = None) -> np.ndarray[Any, Any]:
    """Attention in float64 NumPy, query heads grouped onto key/value heads."""
    q, k, v = as64(q), as64(k), as64(v)
    group = q.shape[-2] // k.shape[-2]
    k, v = np.repeat(k, group, axis=-2), np.repeat(v, group, axis=-2)
    logits = np.einsum("...qhd,...khd->...hqk", q, k) / np.sqrt(q.shape[-1])
    if mask is not None:
        logits = np.where(mask, logits, -1e30)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out: np.ndarray[Any, Any] = np.einsum("...hqk,...khd->...qhd", weights, v)
    return out


def test_is_causal_masks_later_keys_and_combines_with_a_mask() -> None:
    q, k, v = normal(11, (2, 5, 3, 4)), normal(12, (2, 5, 3, 4)), normal(13, (2, 5, 3, 4))
    causal = np.tril(np.ones((5, 5), bool))
    assert_close(nnx.dot_product_attention(q, k, v, is_causal=True), reference_attention(q, k, v, causal))
    padding = np.ones((2, 1, 1, 5), bool)
    padding[..., -1] = False
    both = nnx.dot_product_attention(q, k, v, mask=jnp.asarray(padding), is_causal=True)
    assert_close(both, reference_attention(q, k, v, causal & padding))


def test_grouped_query_attention_shares_each_kv_head_across_a_group() -> None:
    q, k, v = normal(14, (2, 6, 4, 8)), normal(15, (2, 7, 2, 8)), normal(16, (2, 7, 2, 8))
    out = nnx.dot_product_attention(q, k, v)
    assert out.shape == (2, 6, 4, 8)
    assert_close(out, reference_attention(q, k, v))
    weights = nnx.dot_product_attention_weights(q, k)
    assert weights.shape == (2, 4, 6, 7)


@pytest.mark.parametrize(
    ("q", "k", "v", "match"),
    [
        ((1, 4, 5, 8), (1, 4, 2, 8), (1, 4, 2, 8), "must be a multiple"),
        ((2, 4, 2, 8), (4, 2, 8), (4, 2, 8), "same rank"),
        ((2, 4, 2, 8), (3, 4, 2, 8), (3, 4, 2, 8), "batch dims"),
        ((2, 4, 2, 8), (2, 4, 2, 8), (2, 3, 2, 8), "lengths must match"),
        ((2, 4, 2, 8), (2, 4, 2, 7), (2, 4, 2, 8), "depths must match"),
    ],
)
def test_attention_shape_errors(
    q: tuple[int, ...], k: tuple[int, ...], v: tuple[int, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        nnx.dot_product_attention(jnp.ones(q), jnp.ones(k), jnp.ones(v))


def test_multi_head_attention_with_fewer_kv_heads() -> None:
    layer = nnx.MultiHeadAttention(8, 16, num_kv_heads=2, rngs=nnx.Rngs(0))
    assert layer.query.kernel.shape == (16, 8, 2)
    assert layer.key.kernel.shape == (16, 2, 2) and layer.value.kernel.shape == (16, 2, 2)
    x = normal(17, (1, 5, 16))
    full = layer(x, is_causal=True)
    q, k, v = layer.query(x), layer.key(x), layer.value(x)
    expected = layer.out(jnp.asarray(reference_attention(q, k, v, np.tril(np.ones((5, 5), bool))), jnp.float32))
    assert_close(full, expected, atol=1e-5)
    layer.init_cache(x.shape)
    assert layer.cached_key is not None and layer.cached_key.shape == (1, 5, 2, 2)
    steps = jnp.concatenate([layer(x[:, i : i + 1], decode=True) for i in range(5)], axis=1)
    assert_close(steps, full, atol=1e-5)
    with pytest.raises(ValueError, match="must be a multiple of num_kv_heads=3"):
        nnx.MultiHeadAttention(8, 16, num_kv_heads=3, rngs=nnx.Rngs(0))


def test_keep_rngs_false_keeps_no_stream_and_then_a_call_needs_one() -> None:
    kept = nnx.MultiHeadAttention(2, 4, dropout_rate=0.5, rngs=nnx.Rngs(0))
    assert kept.rngs is not None
    bare = nnx.MultiHeadAttention(2, 4, dropout_rate=0.5, keep_rngs=False, rngs=nnx.Rngs(0))
    assert bare.rngs is None
    assert not nnx.state(bare, nnx.RngState).paths
    x = jnp.ones((1, 3, 4))
    with pytest.raises(ValueError, match="keep_rngs=False"):
        bare(x)
    assert bare(x, rngs=nnx.Rngs(dropout=1)).shape == (1, 3, 4)


# -- LoRA ---------------------------------------------------------------------------------


def test_lora_param_type_sets_the_kind_of_the_adapter_cells() -> None:
    as_lora = nnx.LoRA(3, 2, 4, rngs=nnx.Rngs(0))
    assert {p[0] for p in nnx.state(as_lora, nnx.LoRAParam).paths} == {"lora_a", "lora_b"}
    as_param = nnx.LoRA(3, 2, 4, lora_param_type=nnx.Param, rngs=nnx.Rngs(0))
    assert type(as_param.lora_a) is nnx.Param
    assert not nnx.state(as_param, nnx.LoRAParam).paths
    assert len(nnx.state(as_param, nnx.Param).paths) == 2
    linear = nnx.LoRALinear(3, 4, lora_rank=2, lora_param_type=nnx.Param, rngs=nnx.Rngs(0))
    assert type(linear.lora.lora_a) is nnx.Param
    with pytest.raises(TypeError, match="expected a Variable kind"):
        nnx.LoRA(3, 2, 4, lora_param_type=int, rngs=nnx.Rngs(0))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType, reportCallIssue]  # the error under test


def test_lora_passes_call_keywords_to_its_base_module() -> None:
    def base(x: jax.Array, *, scale: float = 1.0) -> jax.Array:
        return x.sum(-1, keepdims=True) * scale

    layer = nnx.LoRA(3, 2, 1, base_module=base, b_initializer=nnx.initializers.ones, rngs=nnx.Rngs(0))
    x = normal(18, (2, 3))
    adapter = as64(x) @ as64(layer.lora_a[...]) @ as64(layer.lora_b[...])
    assert_close(layer(x, scale=3.0), adapter + 3.0 * as64(x).sum(-1, keepdims=True))
    # Without a base module the keywords are unused (Flax's behaviour: one call site for both).
    bare = nnx.LoRA(3, 2, 1, b_initializer=nnx.initializers.ones, rngs=nnx.Rngs(0))
    assert_close(bare(x, scale=3.0), as64(x) @ as64(bare.lora_a[...]) @ as64(bare.lora_b[...]))


# -- recurrent cells' carry ------------------------------------------------------------------

CELLS: list[Callable[..., Any]] = [nnx.LSTMCell, nnx.GRUCell, nnx.SimpleCell, nnx.OptimizedLSTMCell]


def leaves(carry: Any) -> list[jax.Array]:
    return list(carry) if isinstance(carry, tuple) else [carry]  # pyright: ignore[reportUnknownArgumentType]


@pytest.mark.parametrize("cell_type", CELLS)
def test_initialize_carry_takes_rngs_and_carry_init(cell_type: Callable[..., Any]) -> None:
    cell = cell_type(3, 4, rngs=nnx.Rngs(0))
    zeros = leaves(cell.initialize_carry((2, 3)))
    assert all(z.shape == (2, 4) and not z.any() for z in zeros)
    ones = leaves(cell.initialize_carry((2, 3), nnx.Rngs(0), carry_init=nnx.initializers.ones))
    assert all(bool((o == 1.0).all()) for o in ones)
    # carry_init draws from the `carry` stream, one key per carry part.
    drawn = leaves(cell.initialize_carry((2, 3), nnx.Rngs(carry=7), carry_init=nnx.initializers.normal(1.0)))
    stream = nnx.Rngs(carry=7)
    for part in drawn:
        assert_close(part, nnx.initializers.normal(1.0)(stream.carry(), (2, 4), jnp.float32))
    with pytest.raises(ValueError, match="needs rngs="):
        cell.initialize_carry((2, 3), carry_init=nnx.initializers.ones)


@pytest.mark.parametrize("cell_type", CELLS)
def test_a_constructor_carry_init_is_the_default(cell_type: Callable[..., Any]) -> None:
    cell = cell_type(3, 4, carry_init=nnx.initializers.ones, rngs=nnx.Rngs(0))
    assert all(bool((c == 1.0).all()) for c in leaves(cell.initialize_carry((3,), nnx.Rngs(0))))
    explicit = cell.initialize_carry((3,), nnx.Rngs(0), carry_init=nnx.initializers.zeros)
    assert all(not c.any() for c in leaves(explicit))


def test_conv_strides_and_dilations_of_none_mean_one() -> None:
    x = normal(19, (2, 9, 7, 3))
    for layer_type in (nnx.Conv, nnx.ConvTranspose):
        unset = layer_type(3, 4, (3, 2), None, kernel_dilation=None, rngs=nnx.Rngs(0))
        ones = layer_type(3, 4, (3, 2), 1, kernel_dilation=1, rngs=nnx.Rngs(0))
        assert_close(unset(x), ones(x))
    assert_close(
        nnx.Conv(3, 4, 3, input_dilation=None, rngs=nnx.Rngs(0))(x), nnx.Conv(3, 4, 3, rngs=nnx.Rngs(0))(x)
    )


@pytest.mark.parametrize(
    ("cell_type", "where"),
    [
        (nnx.LSTMCell, {"kernel": ("ii", "kernel"), "recurrent": ("hf", "kernel"), "bias": ("ho", "bias")}),
        (nnx.GRUCell, {"kernel": ("dense_i", "kernel"), "recurrent": ("dense_h", "kernel"), "bias": ("dense_i", "bias")}),
        (nnx.SimpleCell, {"kernel": ("dense_i", "kernel"), "recurrent": ("dense_h", "kernel"), "bias": ("dense_i", "bias")}),
        (nnx.OptimizedLSTMCell,
         {"kernel": ("dense_i", "kernel"), "recurrent": ("dense_h", "kernel"), "bias": ("dense_h", "bias")}),
    ],
)  # fmt: skip
def test_cell_metadata_arguments(cell_type: Callable[..., Any], where: dict[str, tuple[str, ...]]) -> None:
    cell = cell_type(
        3, 4, kernel_metadata={"m": "kernel"}, recurrent_kernel_metadata={"m": "recurrent"},
        bias_metadata={"m": "bias"}, rngs=nnx.Rngs(0),
    )  # fmt: skip
    for tag, path in where.items():
        owner: Any = cell
        for name in path[:-1]:
            owner = getattr(owner, name)
        assert nnx.cell(owner, path[-1]).get_metadata("m") == tag


def test_embed_with_one_row_reads_it_for_every_id() -> None:
    layer = nnx.Embed(1, 4, rngs=nnx.Rngs(0))
    out = layer(jnp.array([0, 3, 10]))
    assert_close(out, np.broadcast_to(as64(layer.embedding[...])[0], (3, 4)))


def test_group_norm_takes_a_mask_that_broadcasts() -> None:
    x = normal(20, (10, 6))
    mask = np.array([True, False, True, False, True, False])
    y = nnx.GroupNorm(6, num_groups=3, epsilon=1e-6)(x, mask=jnp.asarray(mask))
    groups, keep = as64(x).reshape(10, 3, 2), mask.reshape(3, 2)
    mean = (groups * keep).sum(-1, keepdims=True) / keep.sum(-1, keepdims=True)
    var = (((groups - mean) ** 2) * keep).sum(-1, keepdims=True) / keep.sum(-1, keepdims=True)
    assert_close(y, ((groups - mean) / np.sqrt(var + 1e-6)).reshape(10, 6), atol=1e-4)


def test_flax_initializer_factories() -> None:
    assert nnx.initializers.ones_init()(KEY, (2,)).tolist() == [1.0, 1.0]
    assert nnx.initializers.zeros_init()(KEY, (2,)).tolist() == [0.0, 0.0]

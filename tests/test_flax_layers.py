"""InstanceNorm, WeightNorm, SpectralNorm, PReLU, SimpleCell, OptimizedLSTMCell: behaviour and Flax parity."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gradcheck import check_layer_grads
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import assert_close, copy_from_flax, fnnx

import nnx

IMAGES = 1.5 + 2.0 * jax.random.normal(jax.random.key(0), (2, 4, 5, 3))  # (N, H, W, C)


# -- InstanceNorm ------------------------------------------------------------------


def test_instance_norm_normalises_each_example_and_channel_over_space() -> None:
    y = nnx.InstanceNorm(3, epsilon=0.0)(IMAGES)
    assert_close(y.mean((1, 2)), jnp.zeros((2, 3)), atol=1e-5)
    assert_close(y.var((1, 2)), jnp.ones((2, 3)), atol=1e-4)
    assert nnx.state(nnx.InstanceNorm(3)).paths == (("bias",), ("scale",))
    assert nnx.state(nnx.InstanceNorm(3, use_bias=False, use_scale=False)).paths == ()


def test_instance_norm_is_group_norm_with_one_channel_per_group() -> None:
    assert_close(nnx.InstanceNorm(3)(IMAGES), nnx.GroupNorm(3, num_groups=3)(IMAGES), atol=1e-5)


def test_instance_norm_refuses_the_batch_axis_as_channels() -> None:
    with pytest.raises(ValueError, match=r"InstanceNorm\(feature_axes=0\): axis 0 is the batch axis"):
        nnx.InstanceNorm(2, feature_axes=0)(IMAGES)


@pytest.mark.parametrize("mask", [None, np.array([True, False, True, False, True, False])])
def test_instance_norm_matches_flax(mask: Any) -> None:
    x = jax.random.normal(jax.random.key(1), (10, 6))
    theirs = fnnx.InstanceNorm(6, scale_init=fnnx.initializers.normal(1.0), rngs=fnnx.Rngs(0))
    ours = nnx.InstanceNorm(6, rngs=nnx.Rngs(0))
    copy_from_flax(ours, theirs)
    x3 = jax.random.normal(jax.random.key(2), (4, 5, 6))
    assert_close(ours(x3), theirs(x3))
    assert_close(ours(x, mask=mask), theirs(x, mask=mask))


def test_instance_norm_gradients() -> None:
    check_layer_grads(nnx.InstanceNorm(3, scale_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0)), IMAGES)


# -- PReLU -------------------------------------------------------------------------


def test_prelu_learns_its_negative_slope() -> None:
    act = nnx.PReLU(0.1)
    x = jnp.array([-2.0, -0.5, 0.0, 3.0])
    assert_close(act(x), jnp.array([-0.2, -0.05, 0.0, 3.0]))
    def total(m: nnx.PReLU) -> jax.Array:
        return jnp.sum(m(x))

    grads = nnx.grad(total)(act)
    assert float(grads["negative_slope"]) == pytest.approx(-2.5)  # d/da of a*x summed over x < 0
    assert act(x.astype(jnp.bfloat16)).dtype == jnp.bfloat16
    assert nnx.PReLU(dtype=jnp.float32)(x.astype(jnp.bfloat16)).dtype == jnp.float32


def test_prelu_matches_flax() -> None:
    x = jax.random.normal(jax.random.key(0), (4, 7))
    assert_close(nnx.PReLU(0.3)(x), fnnx.PReLU(0.3)(x))


# -- WeightNorm --------------------------------------------------------------------


def test_weight_norm_gives_the_layer_unit_columns_times_the_scale() -> None:
    linear = nnx.Linear(8, 4, rngs=nnx.Rngs(0))
    norm = nnx.WeightNorm(linear, scale_init=nnx.initializers.constant(2.0), rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(0), (5, 8))
    kernel = np.asarray(nnx.state(linear)["kernel"])
    effective = 2.0 * kernel / np.linalg.norm(kernel, axis=0)
    assert_close(norm(x), x @ effective + np.asarray(nnx.state(linear)["bias"]))
    assert_close(nnx.state(linear)["kernel"], kernel)  # the trained direction is left as it was
    assert sorted(nnx.state(norm, nnx.Param).paths) == [
        ("layer_instance", "bias"), ("layer_instance", "kernel"), ("scales", "kernel")
    ]  # fmt: skip


@settings(max_examples=10, deadline=None)
@given(st.floats(0.1, 10.0))
def test_weight_norm_output_ignores_the_kernels_length(factor: float) -> None:
    linear = nnx.Linear(3, 2, use_bias=False, rngs=nnx.Rngs(0))
    norm = nnx.WeightNorm(linear, rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(0), (4, 3))
    before = norm(x)
    nnx.update(linear, nnx.State.from_flat_state({("kernel",): nnx.state(linear)["kernel"] * factor}))
    assert_close(norm(x), before, atol=1e-5)


def test_weight_norm_gradients_reach_direction_and_scale() -> None:
    norm = nnx.WeightNorm(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), feature_axes=None, rngs=nnx.Rngs(1))
    assert nnx.state(norm, nnx.Param)["scales"]["kernel"].shape == ()
    check_layer_grads(norm, jax.random.normal(jax.random.key(0), (4, 3)), order=1)


def test_weight_norm_filter_must_match_something() -> None:
    with pytest.raises(ValueError, match=r"WeightNorm: variable_filter=.* matches no Param of Linear.*'kernel'"):
        nnx.WeightNorm(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), variable_filter=nnx.PathContains("weight"))


def test_weight_norm_matches_flax() -> None:
    x = jax.random.normal(jax.random.key(0), (10, 8))
    scale_init = fnnx.initializers.constant(1.7)  # Flax 0.12.8 hands the initializer a stream, not a key
    theirs = fnnx.WeightNorm(fnnx.Linear(8, 4, rngs=fnnx.Rngs(0)), scale_init=scale_init, rngs=fnnx.Rngs(1))
    ours = nnx.WeightNorm(nnx.Linear(8, 4, rngs=nnx.Rngs(0)), scale_init=scale_init, rngs=nnx.Rngs(1))
    copy_from_flax(ours.layer_instance, theirs.layer_instance)
    ours.scales[("kernel",)].value = theirs.scales[("kernel",)][...]
    assert_close(ours(x), theirs(x))


# -- SpectralNorm ------------------------------------------------------------------


def test_spectral_norm_divides_by_the_largest_singular_value() -> None:
    linear = nnx.Linear(6, 4, use_bias=False, rngs=nnx.Rngs(0))
    norm = nnx.SpectralNorm(linear, n_steps=50, rngs=nnx.Rngs(1))
    x = jnp.eye(6)
    effective = norm(x)  # x = I: the output is the normalised kernel
    assert float(np.linalg.svd(np.asarray(effective), compute_uv=False)[0]) == pytest.approx(1.0, rel=1e-4)
    kernel = np.asarray(nnx.state(linear)["kernel"])
    sigma = float(np.linalg.svd(kernel, compute_uv=False)[0])
    assert float(norm.batch_stats[("kernel", "sigma")].value) == pytest.approx(sigma, rel=1e-4)
    assert_close(nnx.state(linear)["kernel"], kernel)  # the stored kernel is untouched


def test_spectral_norm_updates_its_estimate_only_in_training() -> None:
    model = nnx.SpectralNorm(nnx.Linear(5, 3, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(1))
    x = jnp.ones((2, 5))
    u0 = model.batch_stats[("kernel", "u")].value
    model.eval()
    model(x)
    assert_close(model.batch_stats[("kernel", "u")].value, u0)
    model.train()
    model(x)
    assert not np.allclose(np.asarray(model.batch_stats[("kernel", "u")].value), np.asarray(u0))
    u1 = model.batch_stats[("kernel", "u")].value
    model(x, update_stats=False)
    assert_close(model.batch_stats[("kernel", "u")].value, u1)


def test_spectral_norm_inside_jit_writes_its_statistics_back() -> None:
    model = nnx.SpectralNorm(nnx.Linear(5, 3, rngs=nnx.Rngs(0)), n_steps=3, rngs=nnx.Rngs(1))
    eager = nnx.clone(model)
    x = jax.random.normal(jax.random.key(0), (2, 5))
    @nnx.jit
    def call(m: nnx.SpectralNorm, x: jax.Array) -> Any:
        return m(x)

    y = call(model, x)
    assert_close(y, eager(x))
    assert_close(model.batch_stats[("kernel", "sigma")].value, eager.batch_stats[("kernel", "sigma")].value)


def test_spectral_norm_non_matrix_weights() -> None:
    conv = nnx.Conv(2, 3, kernel_size=(3, 3), rngs=nnx.Rngs(0))
    assert nnx.SpectralNorm(conv, rngs=nnx.Rngs(1)).batch_stats[("kernel", "u")].value.shape == (1, 3)
    with pytest.raises(ValueError, match=r"'kernel' has 4 axes \(3, 3, 2, 3\) and error_on_non_matrix=True"):
        nnx.SpectralNorm(conv, error_on_non_matrix=True, rngs=nnx.Rngs(1))


@pytest.mark.parametrize("n_steps", [1, 10])
def test_spectral_norm_matches_flax(n_steps: int) -> None:
    x = jax.random.normal(jax.random.key(0), (10, 5))
    theirs = fnnx.SpectralNorm(fnnx.Linear(5, 4, rngs=fnnx.Rngs(0)), n_steps=n_steps, rngs=fnnx.Rngs(1))
    ours = nnx.SpectralNorm(nnx.Linear(5, 4, rngs=nnx.Rngs(0)), n_steps=n_steps, rngs=nnx.Rngs(1))
    copy_from_flax(ours.layer_instance, theirs.layer_instance)
    ours.batch_stats[("kernel", "u")].value = theirs.batch_stats[("kernel", "u")][...]
    assert_close(ours(x), theirs(x))
    assert_close(ours.batch_stats[("kernel", "u")].value, theirs.batch_stats[("kernel", "u")][...])
    assert_close(ours.batch_stats[("kernel", "sigma")].value, theirs.batch_stats[("kernel", "sigma")][...])


# -- SimpleCell, OptimizedLSTMCell -------------------------------------------------


def test_simple_cell_equation_and_residual() -> None:
    cell = nnx.SimpleCell(3, 4, rngs=nnx.Rngs(0))
    x, h = jax.random.normal(jax.random.key(0), (2, 3)), jax.random.normal(jax.random.key(1), (2, 4))
    params = nnx.state(cell)
    pre = x @ params["dense_i"]["kernel"] + params["dense_i"]["bias"] + h @ params["dense_h"]["kernel"]
    new_h, y = cell(h, x)
    assert_close(new_h, jnp.tanh(pre))
    assert_close(y, new_h)
    residual = nnx.SimpleCell(3, 4, residual=True, rngs=nnx.Rngs(0))
    assert_close(residual(h, x)[0], jnp.tanh(pre + h))


def test_optimized_lstm_cell_equals_lstm_cell_with_the_same_weights() -> None:
    fused = nnx.OptimizedLSTMCell(3, 4, rngs=nnx.Rngs(0))
    plain = nnx.LSTMCell(3, 4, rngs=nnx.Rngs(1))
    params = nnx.state(fused)
    gates = ("i", "f", "g", "o")
    per_gate: dict[tuple[str | int, ...], jax.Array] = {}
    for k, gate in enumerate(gates):
        columns = slice(k * 4, (k + 1) * 4)
        per_gate[("if_" if gate == "f" else f"i{gate}", "kernel")] = params["dense_i"]["kernel"][:, columns]
        per_gate[(f"h{gate}", "kernel")] = params["dense_h"]["kernel"][:, columns]
        per_gate[(f"h{gate}", "bias")] = params["dense_h"]["bias"][columns]
    nnx.update(plain, nnx.State.from_flat_state(per_gate))
    x = jax.random.normal(jax.random.key(0), (2, 3))
    carry = (jax.random.normal(jax.random.key(1), (2, 4)), jax.random.normal(jax.random.key(2), (2, 4)))
    jax.tree.map(assert_close, fused(carry, x), plain(carry, x))


@pytest.mark.parametrize("name", ["SimpleCell", "OptimizedLSTMCell"])
def test_cells_match_flax_and_run_in_rnn(name: str) -> None:
    theirs = getattr(fnnx, name)(3, 4, rngs=fnnx.Rngs(0))
    ours = getattr(nnx, name)(3, 4, rngs=nnx.Rngs(0))
    copy_from_flax(ours, theirs)
    x = jax.random.normal(jax.random.key(0), (2, 3))
    carry = ours.initialize_carry(x.shape)
    jax.tree.map(assert_close, ours(carry, x), theirs(theirs.initialize_carry(x.shape, fnnx.Rngs(0)), x))
    sequence = jax.random.normal(jax.random.key(1), (2, 5, 3))
    assert_close(nnx.RNN(ours)(sequence), fnnx.RNN(theirs)(sequence, rngs=fnnx.Rngs(0)), atol=1e-5)


def test_cells_draw_a_carry_from_the_carry_stream() -> None:
    cell = nnx.OptimizedLSTMCell(3, 4, rngs=nnx.Rngs(0))
    c, h = cell.initialize_carry((2, 3), nnx.Rngs(carry=1), carry_init=nnx.initializers.normal(1.0))
    assert c.shape == h.shape == (2, 4) and not np.allclose(np.asarray(c), np.asarray(h))
    assert float(jnp.abs(nnx.SimpleCell(3, 4, rngs=nnx.Rngs(0)).initialize_carry((2, 3))).sum()) == 0.0
    with pytest.raises(ValueError, match=r"SimpleCell.initialize_carry\(carry_init=...\) needs rngs="):
        nnx.SimpleCell(3, 4, rngs=nnx.Rngs(0)).initialize_carry((2, 3), carry_init=nnx.initializers.normal())

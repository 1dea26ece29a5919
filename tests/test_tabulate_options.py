"""``nnx.tabulate``'s ``compute_flops``/``compute_vjp_flops`` columns and ``console_kwargs``."""

from __future__ import annotations

import jax.numpy as jnp

import nnx


class Model(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(4, 8, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return nnx.relu(self.linear(x))


def row(table: str, name: str) -> list[str]:
    line = next(line for line in table.splitlines() if f" {name} " in line)
    return [cell.strip() for cell in line.replace("│", "|").split("|") if cell.strip()]


def header(table: str) -> list[str]:
    line = next(line for line in table.splitlines() if "path" in line)
    return [cell.strip() for cell in line.replace("┃", "|").replace("│", "|").split("|") if cell.strip()]


def test_flops_column_counts_the_call_on_its_own() -> None:
    table = nnx.tabulate(Model(nnx.Rngs(0)), jnp.ones((3, 4)), compute_flops=True)
    assert "flops" in header(table) and "vjp_flops" not in header(table)
    # The matrix product of (3, 4) by (4, 8) is 2 * 3 * 4 * 8 operations; adding the bias 3 * 8.
    assert row(table, "Linear")[4] == f"{2 * 3 * 4 * 8 + 3 * 8:,}"
    plain = nnx.tabulate(Model(nnx.Rngs(0)), jnp.ones((3, 4)))
    assert "flops" not in header(plain)


def test_vjp_flops_exceed_the_forward_flops() -> None:
    table = nnx.tabulate(Model(nnx.Rngs(0)), jnp.ones((3, 4)), compute_flops=True, compute_vjp_flops=True)
    assert header(table)[4:6] == ["flops", "vjp_flops"]
    forward, both = (int(cell.replace(",", "")) for cell in row(table, "Linear")[4:6])
    # Forward, then the two products of the backward pass (for the input and the kernel).
    assert both >= forward + 2 * (2 * 3 * 4 * 8)


def test_console_kwargs_reach_the_console() -> None:  # rich is a dev dependency: always the rich table here
    narrow = nnx.tabulate(Model(nnx.Rngs(0)), jnp.ones((3, 4)), console_kwargs={"width": 60})
    wide = nnx.tabulate(Model(nnx.Rngs(0)), jnp.ones((3, 4)), console_kwargs={"width": 400})
    assert max(map(len, narrow.splitlines())) <= 60 < max(map(len, wide.splitlines()))

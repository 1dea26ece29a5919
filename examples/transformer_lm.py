"""A small decoder-only transformer trained on a text that ships with Python (the language
reference topics behind ``help()``, in ``pydoc_data.topics``), then sampled with the
attention kv-cache.

Character-level: the model learns to continue Python's documentation. After training
it checks that decoding one token at a time through the ``Cache`` cells of
every ``MultiHeadAttention`` gives the same logits as the full causal
forward pass, then samples a continuation with the cache under ``nnx.jit``.

Run: python examples/transformer_lm.py            (full run)
     python examples/transformer_lm.py --quick    (a few steps; what CI runs, also with NNX_EXAMPLES_QUICK=1)
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
from _cli import parse_args
from _progress import progress

import nnx

VOCAB = 128  # ASCII; anything else becomes "?"


def corpus() -> str:
    """Python's own reference documentation (what ``help("assignment")`` shows), as one text."""
    from pydoc_data.topics import topics

    return "\n".join(topics[name] for name in sorted(topics))


def encode(text: str) -> np.ndarray[tuple[int], np.dtype[np.int32]]:
    return np.array([ord(c) if ord(c) < VOCAB else ord("?") for c in text], np.int32)


def decode_text(ids: list[int]) -> str:
    return "".join(chr(i) for i in ids)


class Block(nnx.Module):
    """Pre-norm transformer block: causal self-attention and an MLP, both residual."""

    def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs) -> None:
        self.ln1 = nnx.LayerNorm(dim, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(heads, dim, rngs=rngs)
        self.ln2 = nnx.LayerNorm(dim, rngs=rngs)
        self.mlp_in = nnx.Linear(dim, 4 * dim, rngs=rngs)
        self.mlp_out = nnx.Linear(4 * dim, dim, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
        x = x + self.dropout(self.attn(self.ln1(x), mask=mask))
        return x + self.dropout(self.mlp_out(nnx.gelu(self.mlp_in(self.ln2(x)))))


class TransformerLM(nnx.Module):
    def __init__(self, *, dim: int, heads: int, layers: int, max_len: int, rngs: nnx.Rngs) -> None:
        self.max_len = max_len
        self.embed = nnx.Embed(VOCAB, dim, rngs=rngs)
        self.positions = nnx.Embed(max_len, dim, rngs=rngs)
        self.blocks = [Block(dim, heads, rngs=rngs) for _ in range(layers)]
        self.ln = nnx.LayerNorm(dim, rngs=rngs)

    def __call__(self, tokens: jax.Array, start: jax.Array | int = 0) -> jax.Array:
        """Next-token logits for ``tokens`` (batch, time) placed at positions ``start, start+1, ...``.

        In decode mode (``set_attributes(decode=True)`` after ``init_cache``) the
        attention layers append to their caches and need no mask.
        """
        steps = tokens.shape[-1]
        x = self.embed(tokens) + self.positions(start + jnp.arange(steps))
        decoding = self.blocks[0].attn.decode
        mask = None if decoding else nnx.make_causal_mask(tokens)
        for block in self.blocks:
            x = block(x, mask)
        return self.embed.attend(self.ln(x))  # output layer tied to the input embedding

    def init_cache(self, batch: int) -> None:
        """Empty kv-caches for ``batch`` sequences of up to ``max_len`` tokens; decode mode on."""
        for block in self.blocks:
            block.attn.init_cache((batch, self.max_len, block.attn.in_features))
        self.set_attributes(decode=True)


def loss_fn(model: TransformerLM, tokens: jax.Array) -> jax.Array:
    logits = model(tokens[:, :-1])  # predict every next character
    loss: jax.Array = optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()
    return loss


@nnx.jit
def train_step(model: TransformerLM, optimizer: nnx.Optimizer, tokens: jax.Array) -> jax.Array:
    loss: jax.Array
    loss, grads = nnx.value_and_grad(loss_fn)(model, tokens)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def eval_loss(model: TransformerLM, tokens: jax.Array) -> jax.Array:
    loss: jax.Array = loss_fn(model, tokens)
    return loss


@nnx.jit
def decode_step(model: TransformerLM, token: jax.Array, position: jax.Array) -> jax.Array:
    """Logits for one new token per sequence; appends its keys/values to the caches."""
    return model(token[:, None], position)[:, 0]


def cached_logits_match(model: TransformerLM, prompt: jax.Array) -> float:
    """Largest difference between full-pass logits and step-by-step cached logits."""
    model.set_attributes(decode=False)
    full = model(prompt)
    model.init_cache(prompt.shape[0])
    steps = [decode_step(model, prompt[:, t], jnp.array(t)) for t in range(prompt.shape[1])]
    return float(jnp.max(jnp.abs(jnp.stack(steps, axis=1) - full)))


def sample(model: TransformerLM, prompt: jax.Array, length: int, key: jax.Array, temperature: float = 0.7) -> list[int]:
    model.init_cache(1)
    logits = jnp.zeros((1, VOCAB))
    for t in range(prompt.shape[1]):  # feed the prompt through the cache
        logits = decode_step(model, prompt[:, t], jnp.array(t))
    out: list[int] = []
    for t in range(prompt.shape[1], min(prompt.shape[1] + length, model.max_len)):
        key, draw = jax.random.split(key)
        token = jax.random.categorical(draw, logits / temperature)
        out.append(int(token[0]))
        logits = decode_step(model, token, jnp.array(t))
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv, full=600, quick=40)
    steps = args.count

    data = encode(corpus())
    split = int(0.9 * len(data))
    train, test = data[:split], data[split:]
    seq = 128  # the model only learns positions it is trained on: sample within them
    print(f"pydoc_data.topics: {len(train)} training / {len(test)} test characters")

    model = TransformerLM(dim=64, heads=4, layers=2, max_len=seq, rngs=nnx.Rngs(0))
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(optax.warmup_cosine_decay_schedule(0.0, 6e-3, min(50, steps // 4), steps, 6e-4)))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    starts = range(0, len(test) - seq - 1, seq)
    test_batch = jnp.asarray(np.stack([test[i : i + seq + 1] for i in starts][: 32 if args.quick else None]))
    model.eval()
    initial = float(eval_loss(model, test_batch))

    rng = np.random.default_rng(1)
    model.train()
    start = time.perf_counter()
    for step in (bar := progress(range(steps), desc="transformer_lm", leave=False)):
        offsets = rng.integers(0, len(train) - seq - 1, 16)
        loss = train_step(model, optimizer, jnp.asarray(np.stack([train[o : o + seq + 1] for o in offsets])))
        if step % 100 == 0:
            bar.set_postfix(loss=f"{float(loss):.3f}")
    seconds = time.perf_counter() - start
    model.eval()
    final = float(eval_loss(model, test_batch))
    print(f"test cross-entropy {initial:.3f} -> {final:.3f} nats/char after {steps} steps in {seconds:.1f}s")

    prompt = jnp.asarray(encode("The for statement is used to "))[None]
    gap = cached_logits_match(model, prompt)
    print(f"cached decoding vs full forward pass: max |logit difference| = {gap:.2e}")
    continuation = decode_text(sample(model, prompt, 24 if args.quick else seq, jax.random.key(0)))
    print("sample:\n" + decode_text(prompt[0].tolist()) + continuation)
    assert gap < 1e-4, "decoding with the kv-cache must give the full pass's logits"
    assert final < initial - 1.0, "training did not lower the test loss"
    return {"initial": initial, "final": final, "cache_gap": gap}


if __name__ == "__main__":
    main()

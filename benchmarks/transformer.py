"""A causal transformer policy that keeps its whole context (KV cache), in numpy float32.

The baseline against which the liquid policy's constant cost is shown. Per tick it embeds the
observation (linear + sinusoidal position), appends this position's key and value to the
cache, attends over every cached position, and maps the result to an action. Its per-tick cost
is O(context * d_model) and its memory O(context * d_model): it grows with the tick count.

Shape (defaults, about the parameter count of the CfC-64 policy with its 128-unit backbone,
~44k): one pre-norm layer, ``d_model=64``, 4 heads, MLP 192, readout to ``act_dim``.

With one layer, the keys and values of a position depend only on that position's
observation, so :meth:`CausalTransformerPolicy.prefill` can fill the cache for a long history
in one batched pass, exactly as stepping would: the benchmark uses this to measure the
per-tick cost at context 100k without stepping through 100k ticks first.
"""

from __future__ import annotations

import numpy as np

_F32 = np.float32


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + _F32(1e-5)) * g + b


class CausalTransformerPolicy:
    """One-layer causal transformer over the observation history.

    Args:
        obs_dim: observation size (input per tick).
        act_dim: action size (output per tick).
        d_model: embedding width (divisible by ``n_heads``).
        n_heads: attention heads.
        d_ff: MLP hidden width.
        seed: weight initialisation seed (random weights: only cost is measured).
    """

    def __init__(
        self,
        obs_dim: int = 17,
        act_dim: int = 6,
        d_model: int = 64,
        n_heads: int = 4,
        d_ff: int = 192,
        seed: int = 0,
    ) -> None:
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        rng = np.random.default_rng(seed)

        def w(n_in: int, n_out: int) -> np.ndarray:
            return (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(_F32)

        self.obs_dim, self.act_dim, self.d, self.n_heads = obs_dim, act_dim, d_model, n_heads
        self.dh = d_model // n_heads
        d = d_model
        self.p = {
            "w_in": w(obs_dim, d),
            "b_in": np.zeros(d, _F32),
            "ln1_g": np.ones(d, _F32),
            "ln1_b": np.zeros(d, _F32),
            "w_qkv": w(d, 3 * d),
            "b_qkv": np.zeros(3 * d, _F32),
            "w_o": w(d, d),
            "b_o": np.zeros(d, _F32),
            "ln2_g": np.ones(d, _F32),
            "ln2_b": np.zeros(d, _F32),
            "w_1": w(d, d_ff),
            "b_1": np.zeros(d_ff, _F32),
            "w_2": w(d_ff, d),
            "b_2": np.zeros(d, _F32),
            "lnf_g": np.ones(d, _F32),
            "lnf_b": np.zeros(d, _F32),
            "w_out": w(d, act_dim),
            "b_out": np.zeros(act_dim, _F32),
        }
        inv = 1.0 / (10000.0 ** (np.arange(0, d, 2) / d))
        self._inv_freq = inv.astype(np.float64)
        self.reset()

    @property
    def n_params(self) -> int:
        """Number of weights."""
        return int(sum(v.size for v in self.p.values()))

    @property
    def context(self) -> int:
        """Positions held in the cache (= ticks since reset)."""
        return self._t

    @property
    def cache_bytes(self) -> int:
        """Bytes of keys and values held for the context (float32, ``2 * context * d_model``)."""
        return int(2 * self._t * self.d * 4)

    def reset(self) -> None:
        """Forget the context."""
        self._t = 0
        self._k = np.zeros((self.n_heads, 16, self.dh), _F32)
        self._v = np.zeros((self.n_heads, 16, self.dh), _F32)

    def _pos(self, t: np.ndarray) -> np.ndarray:
        ang = np.asarray(t, dtype=np.float64)[..., None] * self._inv_freq
        pe = np.empty((*ang.shape[:-1], self.d), _F32)
        pe[..., 0::2] = np.sin(ang)
        pe[..., 1::2] = np.cos(ang)
        return pe

    def reserve(self, n: int) -> None:
        """Make room for exactly ``n`` positions now (stepping past them doubles, amortised)."""
        self._reserve(n, exact=True)

    def _reserve(self, n: int, exact: bool = False) -> None:
        cap = self._k.shape[1]
        if n <= cap:
            return
        new = n if exact else max(n, 2 * cap)
        for name in ("_k", "_v"):
            old = getattr(self, name)
            grown = np.zeros((self.n_heads, new, self.dh), _F32)
            grown[:, : self._t] = old[:, : self._t]
            setattr(self, name, grown)

    def _embed(self, obs: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.p
        x = np.asarray(obs, dtype=_F32) @ p["w_in"] + p["b_in"] + self._pos(t)
        qkv = _layer_norm(x, p["ln1_g"], p["ln1_b"]) @ p["w_qkv"] + p["b_qkv"]
        return x, qkv

    def prefill(self, observations: np.ndarray) -> None:
        """Append a history of observations ``(n, obs_dim)`` to the cache in one pass."""
        n = len(observations)
        t = np.arange(self._t, self._t + n)
        _, qkv = self._embed(observations, t)
        d, h, dh = self.d, self.n_heads, self.dh
        self._reserve(self._t + n)
        self._k[:, self._t : self._t + n] = qkv[:, d : 2 * d].reshape(n, h, dh).transpose(1, 0, 2)
        self._v[:, self._t : self._t + n] = qkv[:, 2 * d :].reshape(n, h, dh).transpose(1, 0, 2)
        self._t += n

    def step(self, obs: np.ndarray) -> np.ndarray:
        """Append one observation ``(obs_dim,)`` and return the action ``(act_dim,)`` float32."""
        p, d, h, dh = self.p, self.d, self.n_heads, self.dh
        x, qkv = self._embed(obs, np.asarray(self._t))
        t = self._t
        self._reserve(t + 1)
        self._k[:, t] = qkv[d : 2 * d].reshape(h, dh)
        self._v[:, t] = qkv[2 * d :].reshape(h, dh)
        self._t = t + 1
        q = qkv[:d].reshape(h, dh) * _F32(1.0 / np.sqrt(dh))
        att = np.empty(d, _F32)
        for j in range(h):  # per head: contiguous (t+1, dh) blocks, BLAS matrix-vector
            k, v = self._k[j, : t + 1], self._v[j, : t + 1]
            scores = k @ q[j]  # (t+1,)
            scores -= scores.max()
            np.exp(scores, out=scores)
            scores /= scores.sum()
            att[j * dh : (j + 1) * dh] = scores @ v
        x = x + att @ p["w_o"] + p["b_o"]
        hid = _layer_norm(x, p["ln2_g"], p["ln2_b"]) @ p["w_1"] + p["b_1"]
        np.maximum(hid, _F32(0.0), out=hid)
        x = x + hid @ p["w_2"] + p["b_2"]
        return _layer_norm(x, p["lnf_g"], p["lnf_b"]) @ p["w_out"] + p["b_out"]

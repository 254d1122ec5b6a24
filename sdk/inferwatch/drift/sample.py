"""A bounded, mergeable, uniform sample of whole rows: what the exact and multivariate tests see.

>>> sample = RowSample.build(10_000, {"a": a, "b": b}, {}, size=2048, rng=rng)
>>> merged = sample.merge(other)     # still a uniform sample of the rows of both

Every row gets an independent uniform random key and the sample keeps the ``size`` rows with the
smallest keys (a bottom-k sample). The smallest keys of two samples' union are the smallest keys
of the union of their windows, so a merge is again a uniform sample without replacement of all
the rows — the property a reservoir sample loses when merged. While a profile has seen at most
``size`` rows the sample holds every row (:attr:`complete`), and tests on it are exact.

The sample keeps the numeric feature columns (float64, NaN for a null or a column the row did
not have) and vector features (float32, at most :data:`VECTOR_DIM` dimensions: wider vectors
are stored as a fixed random projection, the same for every profile, so that any two samples
of a feature are comparable).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_SIZE = 2048
"""Rows kept by default: 16 kB per numeric column, 512 kB per vector feature."""
VECTOR_DIM = 64
"""Dimensions a vector feature is stored with (a random projection of wider vectors)."""
_PROJECTION_SEED = 0x1F17  # fixed: profiles built anywhere project a feature the same way


def projection(dim: int) -> np.ndarray | None:
    """The (dim, VECTOR_DIM) Gaussian random projection of `dim`-wide vectors (None: kept)."""
    if dim <= VECTOR_DIM:
        return None
    rng = np.random.default_rng([_PROJECTION_SEED, dim])
    return rng.standard_normal((dim, VECTOR_DIM)) / math.sqrt(VECTOR_DIM)


def stored_vectors(values: np.ndarray) -> np.ndarray:
    """Vectors as the sample stores them: float32, projected when wider than VECTOR_DIM."""
    matrix = projection(values.shape[1])
    out = values if matrix is None else values @ matrix
    return np.asarray(out, dtype=np.float32)


@dataclass
class RowSample:
    """A uniform sample of at most ``size`` rows of a profile (see the module docstring)."""

    size: int
    seen: int
    """Rows the sample was drawn from."""
    keys: np.ndarray  # (m,) float64, ascending
    columns: list[str]
    values: np.ndarray  # (m, len(columns)) float64
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (m, d) float32
    vector_dims: dict[str, int] = field(default_factory=dict)  # name -> original dimension

    @property
    def rows(self) -> int:
        return len(self.keys)

    @property
    def complete(self) -> bool:
        """True while every row seen is in the sample."""
        return self.rows == self.seen

    def column(self, name: str) -> np.ndarray | None:
        """The sampled finite values of a numeric column (None when it is not sampled)."""
        if name not in self.columns:
            return None
        values = self.values[:, self.columns.index(name)]
        finite: np.ndarray = values[np.isfinite(values)]
        return finite

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        """The sampled rows of these numeric columns, (rows, len(names))."""
        return self.values[:, [self.columns.index(n) for n in names]]

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def draw(
        cls, n_rows: int, size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(keys, row indices) of the sample of `n_rows` rows, in key order.

        The same as giving every row a uniform key and keeping the `size` smallest, without
        drawing a key per row: a uniform random subset of rows, in random order, gets the
        smallest of `n_rows` uniform order statistics (cumulated exponential spacings).
        """
        size = min(size, n_rows)
        rows = (
            rng.choice(n_rows, size=size, replace=False)
            if size < n_rows
            else rng.permutation(n_rows)
        )
        spacings = np.cumsum(rng.standard_exponential(size))
        total = spacings[-1] + rng.gamma(n_rows + 1 - size) if size else 1.0
        return spacings / total, rows

    @classmethod
    def build(
        cls,
        keys: np.ndarray,
        seen: int,
        size: int,
        numeric: Mapping[str, np.ndarray],
        vectors: Mapping[str, np.ndarray],
        vector_dims: Mapping[str, int],
    ) -> RowSample:
        """A sample from the sampled rows of each column (already taken, in key order)."""
        names = list(numeric)
        values = np.empty((len(keys), len(names)))
        for j, name in enumerate(names):
            values[:, j] = numeric[name]
        return cls(size, seen, keys, names, values, dict(vectors), dict(vector_dims))

    def merge(self, other: RowSample) -> RowSample:
        """A uniform sample of the rows of both (at most the smaller size)."""
        size = min(self.size, other.size)
        names = self.columns + [c for c in other.columns if c not in self.columns]
        keys = np.concatenate([self.keys, other.keys])
        order = np.argsort(keys, kind="stable")[:size]
        values = np.vstack([_aligned(s, names) for s in (self, other)])[order]
        vectors: dict[str, np.ndarray] = {}
        dims = {**other.vector_dims, **self.vector_dims}
        for name in dims:
            width = {**other.vectors, **self.vectors}[name].shape[1]
            parts = [
                s.vectors.get(name, np.full((s.rows, width), np.nan, dtype=np.float32))
                for s in (self, other)
            ]
            vectors[name] = np.vstack(parts)[order]
        return RowSample(size, self.seen + other.seen, keys[order], names, values, vectors, dims)

    # ---- serialisation ------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "seen": self.seen,
            "rows": self.rows,
            "columns": self.columns,
            "vectors": {
                name: [v.shape[1], self.vector_dims[name]] for name, v in self.vectors.items()
            },
        }

    def blobs(self) -> list[bytes]:
        out = [self.keys.astype("<f8").tobytes(), self.values.astype("<f8").tobytes()]
        out += [v.astype("<f4").tobytes() for v in self.vectors.values()]
        return out

    @classmethod
    def from_header(cls, head: Mapping[str, Any], data: bytes, pos: int) -> tuple[RowSample, int]:
        """The sample stored at `pos` of `data`, and the position after it."""
        rows, names = int(head["rows"]), [str(c) for c in head["columns"]]
        keys, pos = _read(data, pos, "<f8", (rows,))
        values, pos = _read(data, pos, "<f8", (rows, len(names)))
        vectors: dict[str, np.ndarray] = {}
        dims: dict[str, int] = {}
        for name, (width, dim) in head["vectors"].items():
            vectors[name], pos = _read(data, pos, "<f4", (rows, int(width)))
            dims[name] = int(dim)
        sample = cls(int(head["size"]), int(head["seen"]), keys, names, values, vectors, dims)
        return sample, pos


def _aligned(sample: RowSample, names: list[str]) -> np.ndarray:
    """The sample's values in the columns `names` (NaN where it has no such column)."""
    out = np.full((sample.rows, len(names)), np.nan)
    for j, name in enumerate(names):
        if name in sample.columns:
            out[:, j] = sample.values[:, sample.columns.index(name)]
    return out


def _read(data: bytes, pos: int, dtype: str, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    count = math.prod(shape)
    end = pos + count * np.dtype(dtype).itemsize
    if end > len(data):
        raise ValueError("corrupt profile: the row sample is truncated")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=pos).reshape(shape)
    return array.astype(np.float32 if dtype == "<f4" else np.float64), end

"""Dataset loading (LIBSVM / svmlight files) and synthetic problem generators.

Two families of synthetic binary-classification problems are provided, modelled
on the LIBSVM benchmark sets used in the asynchronous-optimization literature:

``"epsilon"``
    Dense, row-normalized Gaussian features (like the PASCAL *epsilon* set).
``"rcv1"``
    Sparse, power-law feature frequencies with positive tf-idf-like values and
    L2-normalized rows (like *rcv1.binary*).

Synthetic data is deterministic given ``seed`` **and independent of how it is
later partitioned**: rows are produced in fixed generator chunks of
:data:`GEN_CHUNK` rows, chunk ``j`` being drawn from
``np.random.default_rng(np.random.SeedSequence([seed, j]))``.  The true weight
vector comes from ``SeedSequence([seed, 2**31])``.  :func:`synthetic_rows` builds
any row range ``[start, stop)`` on its own, which lets Dask workers create their
block without the rest of the matrix.
"""

from __future__ import annotations

import gzip
import lzma
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from .constraints import Interval, check, check_all

__all__ = [
    "GEN_CHUNK",
    "SYNTHETIC_KINDS",
    "check_synthetic_params",
    "load_libsvm",
    "make_epsilon_like",
    "make_rcv1_like",
    "synthetic_rows",
]

#: Number of rows per generator chunk of the synthetic generators.  Changing it
#: changes the generated data.
GEN_CHUNK: int = 8192

#: Names accepted as ``kind`` by :func:`synthetic_rows`.
SYNTHETIC_KINDS: tuple[str, ...] = ("epsilon", "rcv1")

_WEIGHT_STREAM = 2**31  # SeedSequence([seed, _WEIGHT_STREAM]) -> true weight vector

# Keyword parameters (with defaults) accepted by each synthetic kind.
_KIND_DEFAULTS: dict[str, dict[str, float]] = {
    "epsilon": {"noise": 0.1, "flip": 0.05, "decay": 0.0},
    "rcv1": {"density": 0.05, "alpha": 1.1, "noise": 0.1, "flip": 0.05},
}


# --------------------------------------------------------------------------- #
# LIBSVM files
# --------------------------------------------------------------------------- #
def load_libsvm(
    path: str | os.PathLike[str],
    *,
    n_features: int | None = None,
    zero_based: bool | str = "auto",
    dtype: Any = np.float64,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Load a LIBSVM / svmlight file, optionally compressed.

    Parsing is done by :func:`sklearn.datasets.load_svmlight_file`. Plain files
    and ``.gz`` / ``.bz2`` files are opened by scikit-learn (by file name);
    ``.xz`` (and ``.lzma``) files are decompressed with :func:`lzma.open`.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.
    n_features : int, optional
        Number of columns. By default the largest feature index found in the
        file. Pass it when a split (e.g. a test file) misses the last columns.
    zero_based : bool or "auto", default "auto"
        Whether column indices in the file are zero-based; see
        :func:`sklearn.datasets.load_svmlight_file`.
    dtype : numpy dtype, default numpy.float64
        Dtype of ``X``. ``y`` is always float64.

    Returns
    -------
    X : scipy.sparse.csr_matrix
        Shape ``(n_samples, n_features)``, canonical CSR (sorted indices, no
        duplicates).
    y : numpy.ndarray
        Float64 labels of shape ``(n_samples,)``, as stored in the file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be decompressed or parsed, or contains no rows.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import dump_svmlight_file
    >>> from daskasync.datasets import load_libsvm
    >>> tmp = os.path.join(tempfile.mkdtemp(), "toy.svm")
    >>> dump_svmlight_file(np.eye(3), np.array([1.0, -1.0, 1.0]), tmp, zero_based=False)
    >>> X, y = load_libsvm(tmp)
    >>> X.shape, X.nnz, y.tolist()
    ((3, 3), 3, [1.0, -1.0, 1.0])
    """
    fspath = os.fspath(path)
    if isinstance(fspath, bytes):
        fspath = os.fsdecode(fspath)
    if not os.path.exists(fspath):
        raise FileNotFoundError(f"LIBSVM file not found: {fspath!r}")
    if os.path.isdir(fspath):
        raise IsADirectoryError(f"LIBSVM path is a directory, not a file: {fspath!r}")
    from sklearn.datasets import load_svmlight_file  # a second to import: on use only

    kwargs: dict[str, Any] = {"n_features": n_features, "zero_based": zero_based, "dtype": dtype}
    try:
        if fspath.lower().endswith((".xz", ".lzma")):
            with lzma.open(fspath, "rb") as fh:
                X, y = load_svmlight_file(fh, **kwargs)
        else:
            X, y = load_svmlight_file(fspath, **kwargs)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (ValueError, EOFError, lzma.LZMAError, gzip.BadGzipFile, OSError) as exc:
        raise ValueError(f"could not parse {fspath!r} as a LIBSVM/svmlight file: {exc}") from exc
    if X.shape[0] == 0:
        raise ValueError(f"LIBSVM file {fspath!r} contains no data rows")
    X = sp.csr_matrix(X, dtype=dtype)
    X.sum_duplicates()  # canonical: sorted indices, no duplicates (no-op if already)
    if X.nnz < np.iinfo(np.int32).max and X.shape[1] < np.iinfo(np.int32).max:
        # 32-bit indices, as scipy and scikit-learn's solvers expect when they fit
        X.indices = X.indices.astype(np.int32, copy=False)
        X.indptr = X.indptr.astype(np.int32, copy=False)
    return X, np.asarray(y, dtype=np.float64)


# --------------------------------------------------------------------------- #
# Synthetic generators
# --------------------------------------------------------------------------- #
def _check_int(value: Any, name: str, *, minimum: int) -> int:
    return int(check(name, value, Interval("int", minimum)))


#: what each synthetic family parameter may be
_PARAM_CONSTRAINTS: dict[str, list] = {
    "noise": [Interval("real", 0)],
    "flip": [Interval("real", 0, 0.5)],
    "decay": [Interval("real", 0)],
    "density": [Interval("real", 0, 1, closed="right")],
    "alpha": [Interval("real", 0)],
}


def check_synthetic_params(kind: Any, kw: dict[str, Any]) -> dict[str, float]:
    """Validate ``kind`` and its keyword parameters; return them with defaults filled."""
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(
            f"unknown synthetic kind {kind!r}; known kinds: {', '.join(SYNTHETIC_KINDS)}"
        )
    defaults = _KIND_DEFAULTS[kind]
    unknown = sorted(set(kw) - set(defaults))
    if unknown:
        raise TypeError(
            f"unexpected parameter(s) {unknown} for synthetic kind {kind!r}; "
            f"accepted: {sorted(defaults)}"
        )
    check_all(kw, _PARAM_CONSTRAINTS)
    return {**defaults, **{k: float(v) for k, v in kw.items()}}


def _chunk_rng(seed: int, j: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, j]))


def _true_weights(d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence([seed, _WEIGHT_STREAM])).standard_normal(d)


def _labels(rng: np.random.Generator, margin: np.ndarray, noise: float, flip: float) -> np.ndarray:
    """``sign(margin + noise * N(0, 1))`` with a fraction ``flip`` of labels flipped."""
    m = margin + noise * rng.standard_normal(margin.shape[0])
    y = np.where(m >= 0.0, 1.0, -1.0)
    flips = rng.random(margin.shape[0]) < flip
    y[flips] = -y[flips]
    return y


def _normalize_rows_dense(X: np.ndarray) -> None:
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    norms[norms == 0.0] = 1.0
    X *= (1.0 / norms)[:, None]


def _epsilon_chunk(
    j: int, d: int, seed: int, w: np.ndarray, *, noise: float, flip: float, decay: float
) -> tuple[np.ndarray, np.ndarray]:
    rng = _chunk_rng(seed, j)
    # N(0, I) / sqrt(d) rows normalized to unit norm (the 1/sqrt(d) cancels out).
    X = rng.standard_normal((GEN_CHUNK, d))
    if decay:
        # column k scaled by (k + 1) ** (-decay / 2): a power-law covariance spectrum
        X *= np.arange(1, d + 1, dtype=np.float64) ** (-0.5 * decay)
    _normalize_rows_dense(X)
    # ||x|| = 1 and w ~ N(0, I): the margin x @ w is ~ N(0, 1) (a bit narrower with decay).
    y = _labels(rng, X @ w, noise, flip)
    return X, y


def _rcv1_features(rng: np.random.Generator, d: int, density: float, alpha: float) -> sp.csr_matrix:
    """One generator chunk of rcv1-like features (canonical CSR, unit-norm rows)."""
    # At least one draw per row; mean number of draws max(density * d, 1).
    lam = max(density * d - 1.0, 0.0)
    counts = 1 + rng.poisson(lam, size=GEN_CHUNK)
    total = int(counts.sum())
    # Power-law column frequencies: P(col = k) proportional to (k + 1) ** -alpha.
    freq = np.arange(1, d + 1, dtype=np.float64) ** -alpha
    cdf = np.cumsum(freq)
    cdf /= cdf[-1]
    cols = np.searchsorted(cdf, rng.random(total), side="right")
    np.minimum(cols, d - 1, out=cols)
    rows = np.repeat(np.arange(GEN_CHUNK), counts)
    # Per-occurrence weights; repeated columns in a row are summed (term counts).
    occ = 0.5 + rng.random(total)
    X = sp.csr_matrix((occ, (rows, cols)), shape=(GEN_CHUNK, d), dtype=np.float64)
    X.sum_duplicates()
    # tf-idf-like: log(1 + tf) * idf, rarer columns get larger idf.
    idf = 1.0 + alpha * np.log1p(np.arange(d, dtype=np.float64))
    X.data = np.log1p(X.data) * idf[X.indices]
    # Every row has >= 1 entry, so reduceat over indptr[:-1] is well defined.
    norms = np.sqrt(np.add.reduceat(X.data**2, X.indptr[:-1]))
    X.data /= np.repeat(norms, np.diff(X.indptr))
    return X


def _rcv1_offset(d: int, seed: int, w: np.ndarray, density: float, alpha: float) -> float:
    """Median margin of a reference chunk: centring on it balances the classes.

    Features are all positive, so ``x @ w_true`` is not centred; the offset is
    computed from a dedicated stream (``SeedSequence([seed, 2**31 + 1])``) and is
    therefore the same for every block.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, _WEIGHT_STREAM + 1]))
    return float(np.median(_rcv1_features(rng, d, density, alpha) @ w))


def _rcv1_chunk(
    j: int,
    d: int,
    seed: int,
    w: np.ndarray,
    *,
    density: float,
    alpha: float,
    noise: float,
    flip: float,
    offset: float,
) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = _chunk_rng(seed, j)
    X = _rcv1_features(rng, d, density, alpha)
    y = _labels(rng, X @ w - offset, noise, flip)
    return X, y


_CHUNK_GENERATORS: dict[str, Callable[..., tuple[Any, np.ndarray]]] = {
    "epsilon": _epsilon_chunk,
    "rcv1": _rcv1_chunk,
}


def synthetic_rows(
    kind: str, start: int, stop: int, d: int, seed: int = 0, **kw: float
) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray]:
    """Generate exactly the rows ``[start, stop)`` of a synthetic dataset.

    The generator chunks (of :data:`GEN_CHUNK` rows) covering the range are
    generated and sliced, so the result does not depend on how a dataset is cut
    into blocks: ``synthetic_rows(k, a, c, ...)`` equals ``synthetic_rows(k, a, b,
    ...)`` stacked on ``synthetic_rows(k, b, c, ...)``.

    Parameters
    ----------
    kind : {"epsilon", "rcv1"}
        Dataset family, see :data:`SYNTHETIC_KINDS`.
    start, stop : int
        Global row range, ``0 <= start <= stop``.
    d : int
        Number of features (columns).
    seed : int, default 0
        Non-negative seed.
    **kw
        Family parameters. Both kinds: ``noise`` (std of the Gaussian noise
        added to the N(0, 1)-scaled margin before taking its sign, default 0.1)
        and ``flip`` (fraction of labels flipped at random, default 0.05).
        ``"rcv1"`` also: ``density`` (expected draws per row are
        ``max(density * d, 1)``, default 0.05; repeated columns are merged, so
        the stored nonzeros per row are a bit fewer) and ``alpha`` (power-law
        exponent of the column frequencies, default 1.1). ``"epsilon"`` also:
        ``decay`` (default 0: isotropic rows): column ``k`` is scaled by
        ``(k + 1) ** (-decay / 2)`` before the rows are normalized, so the feature
        covariance has a power-law spectrum and the problem is ill-conditioned like
        real data (at ``d = 2000``, ``decay = 0.5`` makes gradient descent need about
        45 iterations to 1e-2 relative suboptimality instead of 5).

    Returns
    -------
    X : numpy.ndarray or scipy.sparse.csr_matrix
        ``(stop - start, d)`` float64; C-contiguous ndarray for ``"epsilon"``,
        canonical CSR for ``"rcv1"``. Every row has unit L2 norm.
    y : numpy.ndarray
        Float64 labels in ``{-1, +1}``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskasync.datasets import synthetic_rows
    >>> X, y = synthetic_rows("epsilon", 0, 10, d=5, seed=1)
    >>> X2, _ = synthetic_rows("epsilon", 4, 10, d=5, seed=1)
    >>> X.shape, bool(np.array_equal(X[4:], X2)), sorted(set(y.tolist())) == [-1.0, 1.0]
    ((10, 5), True, True)
    """
    params = check_synthetic_params(kind, kw)
    start = _check_int(start, "start", minimum=0)
    stop = _check_int(stop, "stop", minimum=start)
    d = _check_int(d, "d", minimum=1)
    seed = _check_int(seed, "seed", minimum=0)
    m = stop - start
    if m == 0:
        X0 = np.zeros((0, d)) if kind == "epsilon" else sp.csr_matrix((0, d), dtype=np.float64)
        return X0, np.zeros(0)

    w = _true_weights(d, seed)
    gen = _CHUNK_GENERATORS[kind]
    gen_params: dict[str, float] = dict(params)
    if kind == "rcv1":
        gen_params["offset"] = _rcv1_offset(d, seed, w, params["density"], params["alpha"])
    y = np.empty(m, dtype=np.float64)
    X_dense = np.empty((m, d), dtype=np.float64) if kind == "epsilon" else None
    sparse_parts: list[sp.csr_matrix] = []
    for j in range(start // GEN_CHUNK, (stop - 1) // GEN_CHUNK + 1):
        base = j * GEN_CHUNK
        lo, hi = max(start - base, 0), min(stop - base, GEN_CHUNK)
        Xj, yj = gen(j, d, seed, w, **gen_params)
        out = slice(base + lo - start, base + hi - start)
        y[out] = yj[lo:hi]
        if X_dense is not None:
            X_dense[out] = Xj[lo:hi]
        else:
            sparse_parts.append(Xj[lo:hi])
        del Xj, yj
    if X_dense is not None:
        return X_dense, y
    X = sp.csr_matrix(sp.vstack(sparse_parts, format="csr"), dtype=np.float64)
    X.sum_duplicates()
    return X, y


def make_epsilon_like(
    n: int = 10_000,
    d: int = 100,
    seed: int = 0,
    *,
    noise: float = 0.1,
    flip: float = 0.05,
    decay: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense, row-normalized binary classification data resembling *epsilon*.

    Rows are ``N(0, I) / sqrt(d)`` normalized to unit L2 norm; labels are
    ``sign(x @ w_true + noise * N(0, 1))`` (the margin is ~N(0, 1)) with a
    fraction ``flip`` of them flipped, so logistic regression is well posed but
    the data are not separable. Equal to ``synthetic_rows("epsilon", 0, n, d,
    seed, ...)``.

    Parameters
    ----------
    n : int, default 10_000
        Number of rows.
    d : int, default 100
        Number of features.
    seed : int, default 0
        Non-negative seed.
    noise : float, default 0.1
        Std of the Gaussian noise added to the margin.
    flip : float, default 0.05
        Fraction of labels flipped at random.
    decay : float, default 0.0
        Power-law exponent of the feature covariance spectrum: column ``k`` is
        scaled by ``(k + 1) ** (-decay / 2)`` before the rows are normalized. ``0``
        gives isotropic rows, on which full-batch methods converge in a handful of
        iterations; ``0.5`` at ``d = 2000`` makes the problem ill-conditioned like
        real data (gradient descent needs about 45 iterations to 1e-2).

    Returns
    -------
    X : numpy.ndarray
        C-contiguous float64 array of shape ``(n, d)``.
    y : numpy.ndarray
        Float64 labels in ``{-1, +1}`` of shape ``(n,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskasync.datasets import make_epsilon_like
    >>> X, y = make_epsilon_like(n=100, d=20, seed=0)
    >>> X.shape, bool(np.allclose(np.linalg.norm(X, axis=1), 1.0))
    ((100, 20), True)
    """
    n = _check_int(n, "n", minimum=1)
    X, y = synthetic_rows("epsilon", 0, n, d, seed, noise=noise, flip=flip, decay=decay)
    assert isinstance(X, np.ndarray)
    return X, y


def make_rcv1_like(
    n: int = 10_000,
    d: int = 1_000,
    density: float = 0.05,
    seed: int = 0,
    *,
    alpha: float = 1.1,
    noise: float = 0.1,
    flip: float = 0.05,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse, power-law binary classification data resembling *rcv1.binary*.

    Each row draws ``1 + Poisson(max(density * d - 1, 0))`` column indices with
    ``P(column k) ∝ (k + 1) ** -alpha``; repeated columns are merged. Values are
    positive and tf-idf-like (``log(1 + tf) * (1 + alpha * log(1 + k))``) and
    rows are L2-normalized. Labels are ``sign(x @ w_true - c + noise * N(0, 1))``
    with a fraction ``flip`` flipped, where the constant ``c`` (the median margin
    of a fixed reference chunk) makes the classes roughly balanced. Equal to ``synthetic_rows("rcv1", 0, n, d,
    seed, ...)``. Generation is vectorized per :data:`GEN_CHUNK`-row chunk, so
    very tall matrices (10 million rows) can be built block by block.

    Parameters
    ----------
    n : int, default 10_000
        Number of rows.
    d : int, default 1_000
        Number of features.
    density : float, default 0.05
        Expected fraction of columns drawn per row, in ``(0, 1]``.
    seed : int, default 0
        Non-negative seed.
    alpha : float, default 1.1
        Power-law exponent of the column frequencies.
    noise : float, default 0.1
        Std of the Gaussian noise added to the margin.
    flip : float, default 0.05
        Fraction of labels flipped at random.

    Returns
    -------
    X : scipy.sparse.csr_matrix
        Canonical float64 CSR matrix of shape ``(n, d)``.
    y : numpy.ndarray
        Float64 labels in ``{-1, +1}`` of shape ``(n,)``.

    Examples
    --------
    >>> from daskasync.datasets import make_rcv1_like
    >>> X, y = make_rcv1_like(n=1000, d=200, density=0.05, seed=0)
    >>> X.shape, X.format, bool(X.getnnz(axis=0)[:10].sum() > X.getnnz(axis=0)[-10:].sum())
    ((1000, 200), 'csr', True)
    """
    n = _check_int(n, "n", minimum=1)
    X, y = synthetic_rows(
        "rcv1", 0, n, d, seed, density=density, alpha=alpha, noise=noise, flip=flip
    )
    assert sp.issparse(X)
    return X, y

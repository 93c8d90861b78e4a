"""LIBSVM shards read on the workers: each file (local path or fsspec URL, compressed or not)
is parsed by a task on a worker, so the data never passes through the driver, a set larger
than the driver's memory loads, and a block lost with its worker is recomputed from its
file by the scheduler (the block's task keeps its lineage: the file's URL).

Loading is two passes of tasks. The first parses every file as it is (column indices as
written) and reports its rows, its smallest and largest index and its labels; the driver
then decides, for all files together, whether indices are one-based (no index 0 anywhere:
scikit-learn's ``zero_based="auto"`` rule) and the number of features ``d`` (the largest
index, or ``n_features``). The second pass builds the canonical blocks of shape
``(rows, d)``. A file that cannot be read or parsed is reported by name, before any solver
task runs; the parsing tasks return their errors instead of raising them, so the workers
log nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from distributed import Client, Future, wait

from .blocks import label_values, merge_labels, offsets, safe_name, split_sizes

__all__ = ["ShardError", "expand_paths", "from_shards", "is_shards", "load_shards"]


@dataclass(frozen=True)
class ShardError:
    """What a parsing task returns instead of raising: the file and what went wrong."""

    url: str
    message: str
    kind: str = "ValueError"

    def exception(self) -> Exception:
        cls = FileNotFoundError if self.kind == "FileNotFoundError" else ValueError
        return cls(f"{self.url}: {self.message}")


def expand_paths(paths: Any, storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """The files named by ``paths`` (a path or URL with glob characters, or a list of
    paths/URLs), sorted within each glob; ``ValueError`` naming ``paths`` when nothing
    matches, ``FileNotFoundError`` naming a listed file that does not exist."""
    import fsspec

    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise ValueError("paths: give at least one file")
    out: list[str] = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"paths: each item must be a path or URL, got {item!r}")
        text = os.fspath(item)
        fs, _, found = fsspec.core.get_fs_token_paths(text, storage_options=storage_options)
        if any(c in text for c in "*?[") and not found:
            raise ValueError(f"paths: no file matches {text!r}")
        for path in found:
            if not fs.exists(path):
                raise FileNotFoundError(f"{text}: no such file")
            out.append(fs.unstrip_protocol(path) if "://" in text else path)
    if not out:
        raise ValueError(f"paths: no file matches {paths!r}")
    return out


def _parse(url: str, storage_options: Mapping[str, Any] | None, dtype: Any) -> Any:
    """Worker task: the file's rows with its column indices as written, or a ShardError."""
    import fsspec
    from sklearn.datasets import load_svmlight_file

    try:
        with fsspec.open(url, mode="rb", compression="infer", **dict(storage_options or {})) as f:
            X, y = load_svmlight_file(f, zero_based=True, dtype=dtype)
    except FileNotFoundError as err:
        return ShardError(url, f"no such file ({err})", "FileNotFoundError")
    except Exception as err:  # noqa: BLE001 - reported on the driver, naming the file
        return ShardError(url, f"not a valid LIBSVM file ({type(err).__name__}: {err})")
    if X.shape[0] == 0:
        return ShardError(url, "the file holds no rows")
    X = sp.csr_matrix(X)
    return X, np.asarray(y, dtype=np.float64)


def _stats(parsed: Any) -> Any:
    """Worker task: ``(rows, smallest index, largest index, distinct labels, nnz)``."""
    if isinstance(parsed, ShardError):
        return parsed
    X, y = parsed
    idx = X.indices
    return (X.shape[0], int(idx.min()) if len(idx) else None,
            int(idx.max()) if len(idx) else None, label_values(y), int(X.nnz))


def _block(parsed: tuple[sp.csr_matrix, np.ndarray], shift: int, d: int, start: int,
           stop: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Worker task: rows ``[start, stop)`` of a parsed file as a canonical ``(rows, d)``
    block, its indices shifted to zero-based."""
    X, y = parsed
    X = X[start:stop]
    out = sp.csr_matrix((X.data, X.indices - shift, X.indptr), shape=(stop - start, d))
    if not out.has_canonical_format:
        out.sum_duplicates()
    return out, np.ascontiguousarray(y[start:stop])


def _decide(stats: Sequence[Any], urls: Sequence[str], n_features: int | None) -> tuple[int, int]:
    """Zero- or one-based indices for all files together, and ``d``."""
    lows = [s[1] for s in stats if s[1] is not None]
    highs = [(s[2], u) for s, u in zip(stats, urls, strict=True) if s[2] is not None]
    shift = 0 if (not lows or min(lows) == 0) else 1
    top, top_url = max(highs) if highs else (shift - 1, urls[0])
    if n_features is None:
        return shift, max(1, top - shift + 1)
    if top - shift >= n_features:
        raise ValueError(f"{top_url}: feature index {top} does not fit n_features="
                         f"{n_features} ({'one' if shift else 'zero'}-based indices)")
    return shift, int(n_features)


def is_shards(path: Any) -> bool:
    """Whether ``path`` names shards to read on the workers: a list of paths, a glob, or a
    URL (``scheme://``); a single local file is read on the driver."""
    if isinstance(path, (list, tuple)):
        return True
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else ""
    return "://" in text or any(c in text for c in "*?[")


def from_shards(
    cls: Any, paths: Any, *, n_partitions: int | None, client: Client, n_features: int | None,
    dtype: Any, storage_options: Mapping[str, Any] | None,
) -> Any:
    """Body of :meth:`PartitionedData.from_libsvm` for shards (documented there)."""
    urls = expand_paths(paths, storage_options)
    per_file = 1 if n_partitions is None else max(1, -(-n_partitions // len(urls)))
    first = os.path.basename(urls[0].rstrip("/"))
    name = first if len(urls) == 1 else f"{first} (+{len(urls) - 1} files)"
    blocks, sizes, d, stats = load_shards(
        client, urls, n_features=n_features, blocks_per_file=per_file, dtype=dtype,
        storage_options=storage_options, name=name,
    )
    return cls(client, blocks, offsets(sizes), d, is_sparse=True,
               nnz=int(sum(s[4] for s in stats)), name=name,
               label_values=merge_labels([s[3] for s in stats]))


def load_shards(
    client: Client, urls: Sequence[str], *, n_features: int | None, blocks_per_file: int,
    dtype: Any, storage_options: Mapping[str, Any] | None, name: str,
) -> tuple[list[Future], np.ndarray, int, list]:
    """Parse ``urls`` on the workers and build their blocks: ``(block futures, rows per
    block, d, per-file stats)``. Errors name the file; nothing is left on the cluster after
    one."""
    token = uuid.uuid4().hex[:12]
    tag = safe_name(name)
    parsed = [client.submit(_parse, u, storage_options, dtype, pure=False,
                            key=f"daskasync-shard-{tag}-{token}-f{i}")
              for i, u in enumerate(urls)]
    stats_futs = [client.submit(_stats, f, pure=False) for f in parsed]
    try:
        stats = client.gather(stats_futs)
        for s in stats:
            if isinstance(s, ShardError):
                raise s.exception()
        shift, d = _decide(stats, urls, n_features)
    except BaseException:
        for f in [*parsed, *stats_futs]:
            f.release()
        raise
    for f in stats_futs:
        f.release()
    blocks, sizes = [], []
    for i, (f, s) in enumerate(zip(parsed, stats, strict=True)):
        k = min(blocks_per_file, s[0])
        edges = np.concatenate([[0], np.cumsum(split_sizes(s[0], k))])
        for j in range(k):
            a, b = int(edges[j]), int(edges[j + 1])
            blocks.append(client.submit(_block, f, shift, d, a, b, pure=False,
                                        key=f"daskasync-data-{tag}-{token}-f{i}-b{j}"))
            sizes.append(b - a)
    try:
        wait(blocks)  # every block exists on the workers before the data is handed out
        for f in blocks:
            if f.status == "error":
                f.result()
    except BaseException:
        for f in blocks:
            f.release()
        raise
    finally:
        for f in parsed:  # the blocks keep their lineage; the parsed files are not held
            f.release()
    return blocks, np.array(sizes, dtype=np.int64), d, stats

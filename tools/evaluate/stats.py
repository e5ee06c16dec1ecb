"""The paired bootstrap: resample gate rows with replacement (the same rows for both models and every metric),
recompute each metric on the resample for candidate and champion, and take the 2.5th and 97.5th percentiles of the
difference candidate - champion. Seeded (numpy's PCG64 via ``default_rng(seed)``): the same seed gives the same
interval."""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import finish


def resample_indices(rows: int, resamples: int, seed: int) -> Any:
    """A (resamples, rows) matrix of row indices, one bootstrap resample per row of the matrix."""
    return np.random.default_rng(seed).integers(0, rows, size=(resamples, rows))


def paired_interval(metric: str, candidate: tuple[Any, Any], champion: tuple[Any, Any], indices: Any) -> list[float]:
    """95 % percentile interval of candidate - champion for ``metric`` over the resamples in ``indices``."""

    def stat(terms: tuple[Any, Any]) -> Any:
        num, den = (np.asarray(t, dtype=float)[indices].sum(axis=1) for t in terms)
        with np.errstate(divide="ignore", invalid="ignore"):
            return finish(metric, np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))

    deltas = stat(candidate) - stat(champion)
    lo, hi = np.nanpercentile(deltas, [2.5, 97.5])
    return [float(lo), float(hi)]

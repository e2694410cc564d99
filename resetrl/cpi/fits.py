"""Slopes on log-log axes: fitted to the per-p means of the log over seeds, with bootstrap standard
errors (seeds resampled per grid point), beside the same fit on the exact values."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from resetrl.cpi.grid import GridPoint

SAMPLED_FIELD = {"rollouts": "rollouts", "improvement": "improvements"}  # GridPoint's per-seed lists
# Paper A's exponents (docs/method.md section 8): samples ~ p^-2 and p^0, improvement ~ p^2 and p^1.
THEORY_SLOPES = {
    ("rollouts", "random"): -2.0,
    ("rollouts", "oracle"): 0.0,
    ("rollouts", "ratio"): -2.0,
    ("improvement", "random"): 2.0,
    ("improvement", "oracle"): 1.0,
}


@dataclass
class SlopeFit:
    """d log(y) / d log(x): fitted on seed means of log y, bootstrap standard error and 95% interval,
    and the same fit on the exact values."""

    slope: float
    standard_error: float
    interval: tuple[float, float]
    exact_slope: float
    theory: float | None


def fit_loglog(
    x: np.ndarray,
    samples: np.ndarray,
    exact: np.ndarray,
    rng: np.random.Generator,
    bootstrap: int,
    theory: float | None,
) -> SlopeFit:
    """Least-squares slope of the mean over seeds of log y against log x.

    samples: (len(x), seeds) positive values; exact: (len(x),). Bootstrap: for each x independently,
    resample its seeds with replacement, refit; the standard error is the spread of those slopes.
    NaN when a sample is not positive (a stream that hit max_rollouts made no step).
    """
    exact_slope = (
        float(np.polyfit(np.log(x), np.log(exact), 1)[0])
        if np.all(np.isfinite(exact) & (exact > 0))
        else math.nan
    )
    if not np.all(np.isfinite(samples) & (samples > 0)):  # an uncertified stream (no step, no improvement)
        return SlopeFit(math.nan, math.nan, (math.nan, math.nan), exact_slope, theory)
    log_x = np.log(x)
    log_samples = np.log(samples)

    def slope(log_y: np.ndarray) -> float:
        return float(np.polyfit(log_x, log_y, 1)[0])

    num_seeds = samples.shape[1]
    picks = rng.integers(0, num_seeds, size=(bootstrap, len(x), num_seeds))
    resampled_means = np.take_along_axis(log_samples[None], picks, axis=2).mean(axis=2)
    slopes = np.polyfit(log_x, resampled_means.T, 1)[0]
    return SlopeFit(
        slope=slope(log_samples.mean(axis=1)),
        standard_error=float(slopes.std(ddof=1)),
        interval=(float(np.percentile(slopes, 2.5)), float(np.percentile(slopes, 97.5))),
        exact_slope=exact_slope,
        theory=theory,
    )


def sampled_values(points: list[GridPoint], quantity: str) -> np.ndarray:
    """(points, seeds) array of a sampled quantity; NaN where the stream was not certified (its
    rollout count is censored at max_rollouts), so no slope is fitted through it."""
    values = np.array([getattr(pt, SAMPLED_FIELD[quantity]) for pt in points], dtype=float)
    return np.where(np.array([pt.certified for pt in points]), values, np.nan)


def geometric_mean(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))

"""Paired comparisons of two ways of training, with a 95 % interval from scipy.

Two modes are compared on the same images and the same seeds, so what differs between them is the
way of training alone, not the images drawn or the seed. Two designs:

- one split (:func:`paired_bootstrap`): each image's outcome under mode a minus its outcome under mode
  b, averaged over the repeats both ran (repeat r of each uses seed + r); the images are resampled
  with replacement, the repeats staying inside each resample, and the interval is scipy's
  bias-corrected and accelerated bootstrap (``scipy.stats.bootstrap``, BCa). The images are the
  larger source of noise on the few hundred validation images this tool is for: their binomial
  standard error is often larger than the spread over seeds.
- folds (:func:`corrected_resampled_t`): the F × R fold differences (F folds, R repeats of the
  split), whose training sets overlap, so their plain variance understates the mean's. Nadeau and
  Bengio's corrected resampled t-test (Machine Learning 52, 2003) scales it by 1/J + n_test/n_train
  and takes Student's t with J − 1 degrees of freedom (``scipy.stats.t``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Difference:
    """A paired difference (mode a minus mode b) and its interval.

    mean: the difference of the means (accuracy points as a fraction: 0.01 is one point).
    low, high: the interval at `confidence`.
    n: the images (one split) or the fold differences (folds) it rests on.
    how: what the interval is, in words, for the report.
    repeats: the repeats inside each image's outcome (one split), or of the split into folds.
    folds: the folds of each repeat (cross-validation), 0 on one split.
    """

    mean: float
    low: float
    high: float
    n: int
    how: str
    confidence: float = CONFIDENCE
    repeats: int = 1
    folds: int = 0

    @property
    def width(self) -> float:
        return self.high - self.low

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_bootstrap(a, b, confidence: float = CONFIDENCE, n_resamples: int = 4999, seed: int = 0) -> Difference:
    """The difference of mean outcome, mode a minus mode b, on one split.

    a, b: (repeats, images) outcomes (1 correct, 0 wrong, or any per-image score) of the same
    images in the same order, row r of each made with the same seed; a row for every repeat both
    ran. The images are resampled with the repeats inside each resample (the statistic, a mean
    over repeats and images, is the mean over images of each image's mean difference over repeats).
    """
    from scipy import stats

    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes must have one shape (repeats, images): {a.shape} and {b.shape}")
    per_image = (a - b).mean(axis=0)
    mean, n = float(per_image.mean()), per_image.size
    how = f"paired bootstrap over {n} images, {a.shape[0]} repeat(s) inside each resample"
    if n < 2 or np.ptp(per_image) == 0:  # every image differs alike: no spread to resample
        return Difference(mean, mean, mean, n, how, confidence, a.shape[0])
    result = stats.bootstrap((per_image,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                             method="BCa", vectorized=True, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return Difference(mean, float(low), float(high), n, how, confidence, a.shape[0])


def corrected_resampled_t(differences, n_train: int, n_test: int, confidence: float = CONFIDENCE) -> Difference:
    """The mean of J fold differences (mode a minus mode b on each fold of each repeat of the
    split) with Nadeau and Bengio's corrected resampled t interval: n_train and n_test are the images
    a fold trains and is scored on. differences: flat, or (repeats, folds)."""
    from scipy import stats

    shaped = np.asarray(differences, dtype=np.float64)
    repeats, folds = shaped.shape if shaped.ndim == 2 else (1, shaped.size)
    d = shaped.ravel()
    j = d.size
    mean = float(d.mean()) if j else float("nan")
    how = f"corrected resampled t over {j} fold differences"
    design = {"confidence": confidence, "repeats": repeats, "folds": folds}
    if j < 2:
        return Difference(mean, float("nan"), float("nan"), j, how, **design)
    variance = (1 / j + n_test / n_train) * d.var(ddof=1)
    if variance == 0:
        return Difference(mean, mean, mean, j, how, **design)
    half = stats.t.ppf(0.5 + confidence / 2, df=j - 1) * np.sqrt(variance)
    return Difference(mean, mean - half, mean + half, j, how, **design)

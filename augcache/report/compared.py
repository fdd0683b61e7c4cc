"""Modes compared paired: on the same validation images, repeat r of each with the same seed
(seed + r), so that the difference is the way of training alone. Every verdict of the report (does
cached augmentation pay, which K, which mode wins side by side) reads these differences and their
95 % intervals (:func:`augcache.evaluation.paired.paired_bootstrap`), from which images each run's
final head got right (the evaluation job, :func:`augcache.evaluation.scoring.score_heads`).
"""

from __future__ import annotations

from augcache.evaluation.paired import Difference, paired_bootstrap
from augcache.training.modes import CACHE_MODE, MODES


def final_outcomes(evaluation: dict | None) -> dict[tuple, dict[int, list]]:
    """{(mode, K or None): {repeat: which validation images its final head got right}}, the sweep's
    points left out; empty for an evaluation that kept no image's outcome (an earlier version's)."""
    found: dict[tuple, dict[int, list]] = {}
    for row in (evaluation or {}).get("runs", []):
        mode = MODES.get(row.get("mode"))
        if row.get("head") != "final" or "correct" not in row or mode is None or "/sweep/" in row["run"]:
            continue
        k = int(row["k"]) if mode.uses_k else None
        found.setdefault((mode.name, k), {})[int(row["repeat"])] = row["correct"]
    return found


def paired(outcomes: dict, a: tuple, b: tuple) -> Difference | None:
    """Run a (mode, K) minus run b over the repeats both ran, paired image by image; None where
    either has no outcome."""
    first, second = outcomes.get(a) or {}, outcomes.get(b) or {}
    common = sorted(set(first) & set(second))
    if not common:
        return None
    return paired_bootstrap([first[r] for r in common], [second[r] for r in common])


def points(d: Difference) -> str:
    """A difference in accuracy points with its interval and what it rests on."""
    return (f"{100 * d.mean:+.1f} points, 95 % interval {100 * d.low:+.1f} to {100 * d.high:+.1f}, "
            f"{d.n} images × {d.repeats} repeat{'s' if d.repeats != 1 else ''}")


def compared(d: Difference, other: str) -> str:
    """'more accurate than X', 'less accurate than X' or 'as accurate as X' by the interval."""
    if d.low > 0:
        return f"more accurate than {other}"
    if d.high < 0:
        return f"less accurate than {other}"
    return f"as accurate as {other}"


def resolution(d: Difference) -> str:
    """Where the interval holds 0: the smallest difference this data tells apart from none."""
    if d.excludes_zero() or d.width == 0:
        return ""
    return (f" This data cannot tell apart differences under {100 * max(-d.low, d.high):.1f} points; more "
            "validation images would.")


def paired_recommended_k(outcomes: dict, ks: list[int], means: dict[int, float]) -> tuple[int, int] | None:
    """(recommended K, best K): the smallest K whose cached runs are not shown less accurate than the
    best K's (highest mean) by the paired interval; None where a K lacks outcomes."""
    if not all(outcomes.get((CACHE_MODE.name, k)) for k in ks):
        return None
    best = max(ks, key=lambda k: (means[k], -k))
    for k in sorted(ks):
        if k == best:
            return k, best
        d = paired(outcomes, (CACHE_MODE.name, k), (CACHE_MODE.name, best))
        if d is None:
            return None
        if d.high >= 0:
            return k, best
    return best, best

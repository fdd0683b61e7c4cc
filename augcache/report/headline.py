"""The report's headline: in plain words, does cached augmentation pay on this data (accuracy,
end-to-end time, disk against on the fly and no augmentation), and which K to use; each verdict by
the paired differences of :mod:`augcache.report.compared` and their 95 % intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from augcache.report.compared import compared, paired, paired_recommended_k, points, resolution
from augcache.report.tables import SPEEDUP, mean_sd, recommended_k, size_text
from augcache.training.modes import CACHE_MODE, PLAIN_MODE, SPEED_BASELINE


def _spread(rows) -> bool:
    """Every row has a spread over repeats (two or more), so a difference can be told from chance."""
    return len(rows) > 0 and bool((pd.DataFrame(rows)["repeats"] >= 2).all())


def _verdict(cached, baseline, difference=None) -> str:
    """Does cached augmentation pay against on the fly: as accurate, and faster end to end? By the
    paired difference over the same images and seeds and its 95 % interval (difference, see
    :mod:`augcache.report.compared`); for a run of an earlier version, which kept no image's
    outcome, within one sd, and without a spread (one repeat) said to be unmeasured."""
    faster = cached[SPEEDUP] > 1
    # two decimals near 1, where one would read as "1.0× faster"
    speedup = f"{cached[SPEEDUP]:.1f}" if cached[SPEEDUP] >= 1.1 else f"{cached[SPEEDUP]:.2f}"
    speed = f"{speedup}× faster end to end" if faster else "not faster end to end than on the fly"
    if difference is not None:
        accuracy = compared(difference, "on the fly")
        pays = difference.high >= 0 and faster
        return (f"On this data cached augmentation {'pays' if pays else 'does not pay'}: it is {accuracy} "
                f"({points(difference)}) and {speed}." + resolution(difference))
    if not _spread([cached, baseline]):
        return (f"With one repeat, whether cached augmentation is as accurate as on the fly is not measured "
                f"(set train.repeats to 2 or more for a verdict); it is {speed}.")
    sd = np.nanmax([cached["final_val_accuracy_sd"], baseline["final_val_accuracy_sd"], 0.0])
    as_good = cached["final_val_accuracy_mean"] >= baseline["final_val_accuracy_mean"] - sd
    if as_good and faster:
        return f"On this data cached augmentation pays: as accurate as on the fly within one sd, {speed}."
    return ("On this data cached augmentation does not pay: " +
            ("it is less accurate than on the fly by more than one sd" if not as_good else
             "it is not faster end to end than on the fly") + ".")


def headline(table: pd.DataFrame, k_main: int, data_seconds: float, wall: tuple | None = None,
             outcomes: dict | None = None) -> str:
    """The report's first paragraph, in plain words: does cached augmentation pay on this data
    (accuracy, end-to-end time, disk against on the fly and no augmentation), and which K to use.
    wall: (wall-clock seconds, job seconds added up) of the jobs' last runs, said beside; outcomes:
    which validation images each run got right (:func:`augcache.report.compared.final_outcomes`),
    for the paired verdicts."""
    outcomes = outcomes or {}
    def row(mode, k=None):
        rows = table[(table["mode"] == mode) & ((table["k"] == k) if k is not None else True)]
        return rows.iloc[0] if len(rows) else None

    def said(r, name):
        seconds = r["end_to_end_seconds"] if not np.isnan(r["end_to_end_seconds"]) else r["total_seconds"]
        return (f"{name} reaches {mean_sd(r['final_val_accuracy_mean'], r['final_val_accuracy_sd'])} final "
                f"validation accuracy in {seconds:.0f} s")

    cached, baseline = row(CACHE_MODE.name, k_main), row(SPEED_BASELINE.name)
    noaug = row(PLAIN_MODE.name)
    if cached is None:
        return ""
    parts = [said(cached, f"Cached augmentation (K={k_main})") + f", with {size_text(cached['disk_bytes'])} of cache"]
    verdict_text = ""
    if baseline is not None:
        parts.append(said(baseline, "on the fly"))
        difference = paired(outcomes, (CACHE_MODE.name, k_main), (SPEED_BASELINE.name, None))
        verdict_text = _verdict(cached, baseline, difference)
    if noaug is not None:
        parts.append(said(noaug, "without augmentation"))
    text = ("; ".join(parts) + f" (index and pixel store, shared by all: {data_seconds:.0f} s). {verdict_text}").rstrip()
    if wall is not None and not np.isnan(wall[0]):
        text += (f" Seconds here are job seconds added up; jobs run side by side, and the last runs of the "
                 f"{wall[2]} jobs of this report took {wall[0]:.0f} s of wall-clock time (while at least one "
                 f"ran) for {wall[1]:.0f} s of job time.")
    k = recommended_k(table)
    cached_rows = table[table["mode"] == CACHE_MODE.name]
    ks = sorted(set(cached_rows["k"].astype(int)))
    by_pairs = paired_recommended_k(outcomes, ks, dict(zip(cached_rows["k"].astype(int), cached_rows["final_val_accuracy_mean"])))
    if len(ks) == 1:
        text += (f" Only K={ks[0]} ran, so no K is recommended: a K sweep (train.sweep_k) would choose "
                 "one.")
    elif by_pairs is not None:
        recommended, best = by_pairs
        text += (f" Recommended K: {recommended}, the smallest K not shown less accurate than the best K "
                 f"({best}) by a paired 95 % interval" + (", so more cached epochs buy nothing measurable here."
                                                          if recommended < best else "."))
    elif k is not None and not _spread(cached_rows):
        text += (f" With one repeat, K={k[1]} reached the best accuracy, but no K can be recommended: the "
                 "differences between K are not measured (set train.repeats to 2 or more).")
    elif k is not None:
        recommended, best = k
        text += (f" Recommended K: {recommended}, the smallest K whose mean accuracy is within one sd of the best "
                 f"K's ({best})" + (", so more cached epochs buy nothing measurable here." if recommended < best
                                    else "."))
    return text

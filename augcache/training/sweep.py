"""Head sweeps on one cache: the grid of head settings, and the choice of the head to export.

``head_sweep`` maps keys of ``head`` to lists of values; every combination is a point, the keys it
does not set come from ``head``. Each point is trained in ``cached`` mode on the same stores, with
``train.repeats`` repeats. Without a sweep the one candidate is the ``cached`` run of
K = cache.k.

Selection: the point with the best mean over repeats of each repeat's best epoch (highest
``val_accuracy``, or lowest ``val_loss`` with ``head.select_on: val_loss``); ties go to the lower
standard deviation, then to fewer head parameters. The exported head is the chosen point's
repeat 0 at its best epoch.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

SWEEP_KEYS = ("learning_rate", "dropout", "hidden_units", "optimizer", "batch_size", "epochs", "flatten")
SELECT_ON = {"val_accuracy": "max", "val_loss": "min"}


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_text(v) for v in value) or "none"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def point_name(settings: dict) -> str:
    """A point's folder name: its swept keys and values, e.g. ``dropout=0.5,learning_rate=0.001``."""
    return ",".join(f"{key}={_text(settings[key])}" for key in sorted(settings))


def sweep_points(sweep: dict, head: dict) -> dict[str, dict]:
    """{point name: its whole head config} of every combination of the sweep's values, in grid order
    (none without a sweep)."""
    if not sweep:
        return {}
    unknown = sorted(set(sweep) - set(SWEEP_KEYS))
    if unknown:
        raise ValueError(f"head_sweep: {', '.join(unknown)} cannot be swept (one of {', '.join(SWEEP_KEYS)})")
    keys = list(sweep)
    points = {}
    for values in itertools.product(*(sweep[key] for key in keys)):
        settings = dict(zip(keys, values))
        name = point_name(settings)
        if name in points:
            raise ValueError(f"head_sweep: the point {name} is listed twice")
        points[name] = {**head, **settings}
    return points


def best_epoch(metrics: pd.DataFrame, select_on: str) -> int:
    """The head epoch (0-based) a run is best at; the first of equals."""
    values = metrics[select_on].to_numpy()
    return int(np.argmax(values) if SELECT_ON[select_on] == "max" else np.argmin(values))


def sweep_table(summaries: list[dict], select_on: str) -> pd.DataFrame:
    """One row per point: settings, the selection metric's mean and sd over repeats, best epoch of
    repeat 0, head seconds; sorted by the selection rule, the first row chosen."""
    table = pd.DataFrame(summaries)
    rows = []
    for point, group in table.groupby("point", sort=False):
        group = group.sort_values("repeat")
        values = group[f"best_{select_on}"]
        rows.append({
            "point": point,
            "settings": json.dumps(group["swept"].iloc[0], sort_keys=True),
            "repeats": len(group),
            f"{select_on}_mean": float(values.mean()),
            f"{select_on}_sd": float(values.std(ddof=1)) if len(group) > 1 else 0.0,
            "best_val_accuracy_mean": float(group["best_val_accuracy"].mean()),
            # the head at the best epoch, every class counting the same (summaries of older runs lack it)
            "best_head_val_macro_accuracy_mean": float(group["best_head_val_macro_accuracy"].mean())
            if "best_head_val_macro_accuracy" in group else float("nan"),
            "best_epoch": int(group["best_epoch"].iloc[0]),
            "head_seconds": float(group["head_seconds"].mean()),
            "head_parameters": int(group["head_parameters"].iloc[0]),
        })
    out = pd.DataFrame(rows)
    ascending = SELECT_ON[select_on] == "min"
    out = out.sort_values([f"{select_on}_mean", f"{select_on}_sd", "head_parameters"],
                          ascending=[ascending, True, True], kind="stable").reset_index(drop=True)
    out.insert(1, "chosen", [True] + [False] * (len(out) - 1))
    return out


def _repeats(n: int) -> str:
    return f"{n} repeat" if n == 1 else f"{n} repeats"


def select_head(run_dirs: dict[str, list[str]], select_on: str, swept: dict[str, dict],
                refits: dict[str, str] | None = None) -> tuple[dict, pd.DataFrame]:
    """(the choice, the sweep table) from each point's run folders (repeat 0 first). refits: with
    eval.folds, each point's head refit on every labelled image (the run folders are its fold
    runs, which choose): the chosen point's is exported, at the epoch its folds chose."""
    summaries = []
    for point, dirs in run_dirs.items():
        for run_dir in dirs:
            summary = json.loads((Path(run_dir) / "summary.json").read_text())
            summaries.append({**summary, "point": point, "run_dir": run_dir, "swept": swept.get(point, {})})
    table = sweep_table(summaries, select_on)
    chosen = table.iloc[0]
    first = next(s for s in summaries if s["point"] == chosen["point"] and s["repeat"] == 0)
    choice = {
        "point": chosen["point"],
        "settings": json.loads(chosen["settings"]),
        "run_dir": first["run_dir"],
        "head": str(Path(first["run_dir"]) / "best_head.keras"),
        "epoch": int(first["best_epoch"]),
        "select_on": select_on,
        f"{select_on}_mean": float(chosen[f"{select_on}_mean"]),
        f"{select_on}_sd": float(chosen[f"{select_on}_sd"]),
        "val_accuracy_at_epoch": float(first["best_val_accuracy_at_best_epoch"]),
        "points": len(table),
        "why": (f"best mean {select_on} over {int(chosen['repeats'])} repeat(s) of {len(table)} point(s) "
                "(ties: lower sd, then fewer head parameters); exported: repeat 0 at its best epoch"),
    }
    if refits:
        run_dir = refits[chosen["point"]]
        refit = json.loads((Path(run_dir) / "summary.json").read_text())
        choice.update(run_dir=run_dir, head=str(Path(run_dir) / "best_head.keras"), epoch=int(refit["best_epoch"]),
                      val_accuracy_at_epoch=float(refit["best_val_accuracy_at_best_epoch"]),
                      why=(f"best mean {select_on} over {int(chosen['repeats'])} fold runs ({refit['folds']} folds × "
                           f"{_repeats(int(chosen['repeats']) // int(refit['folds']))}) of {len(table)} point(s) (ties: "
                           "lower sd, then fewer head parameters); "
                           "exported: its head refit on every labelled image, at the epoch its folds chose"))
    return choice, table

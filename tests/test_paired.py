"""The paired intervals cover the truth as often as they say: on simulated paired scores with a
known difference, the 95 % interval holds it in about 95 % of draws (within the binomial error of
the draws)."""

import numpy as np
import pytest

from augcache.evaluation.paired import corrected_resampled_t, paired_bootstrap

DRAWS = 300
# 95 % of 300 draws, give or take three binomial standard errors (sqrt(0.95 * 0.05 / 300) = 0.0126)
COVERED = (0.95 - 3 * 0.0126, 0.95 + 3 * 0.0126)


def simulated_split(rng, n_images=200, repeats=2, shift=0.04):
    """(a, b, the true difference): images of a population whose difficulty varies, each scored
    correct or wrong by two modes per repeat; mode b is `shift` less likely right on every image."""
    p = rng.beta(4, 2, size=n_images)  # each image's chance of being right under mode a
    a = rng.random((repeats, n_images)) < p
    b = rng.random((repeats, n_images)) < np.clip(p - shift, 0, 1)
    # the population's difference: E[p] - E[clip(p - shift)], by a large sample of its own
    q = np.random.default_rng(123).beta(4, 2, size=2_000_000)
    return a, b, float(q.mean() - np.clip(q - shift, 0, 1).mean())


def test_the_paired_bootstrap_covers_the_true_difference_as_often_as_it_says():
    rng = np.random.default_rng(0)
    truth = simulated_split(rng)[2]
    covered = 0
    for draw in range(DRAWS):
        a, b, _ = simulated_split(rng)
        found = paired_bootstrap(a, b, n_resamples=999, seed=draw)
        covered += found.low <= truth <= found.high
    assert COVERED[0] <= covered / DRAWS <= COVERED[1], covered / DRAWS


def test_pairing_gives_a_narrower_interval_than_two_unpaired_accuracies_would():
    """Two modes that agree on most images (they differ on 1 image in 20): the paired interval is
    less than half as wide as the interval of the difference of two independent accuracies."""
    rng = np.random.default_rng(1)
    right = rng.random(150) < 0.7
    flip = rng.random(150) < 0.05
    a, b = right[None], (right ^ flip)[None]
    found = paired_bootstrap(a, b)
    unpaired = 2 * 1.96 * np.sqrt(2 * 0.7 * 0.3 / 150)
    assert found.width < unpaired / 2
    assert found.low <= found.mean <= found.high and found.n == 150


def test_the_same_outcomes_give_no_difference_and_shapes_must_pair():
    same = np.array([[1, 0, 1, 1], [0, 0, 1, 1]])
    found = paired_bootstrap(same, same)
    assert (found.mean, found.low, found.high) == (0.0, 0.0, 0.0) and not found.excludes_zero()
    with pytest.raises(ValueError, match="one shape"):
        paired_bootstrap(same, same[:1])


def test_the_corrected_resampled_t_covers_the_true_difference_as_often_as_it_says():
    """Fold differences drawn as the correction assumes them: correlated through their shared
    training images (correlation n_test / (n_train + n_test))."""
    rng = np.random.default_rng(2)
    folds, repeats, n = 5, 2, 500
    n_test = n // folds
    n_train = n - n_test
    rho, sd, truth = n_test / n, 0.03, 0.01
    j = folds * repeats
    cov = sd**2 * ((1 - rho) * np.eye(j) + rho * np.ones((j, j)))
    covered = 0
    for _ in range(DRAWS):
        d = rng.multivariate_normal(np.full(j, truth), cov)
        found = corrected_resampled_t(d, n_train, n_test)
        covered += found.low <= truth <= found.high
    assert COVERED[0] <= covered / DRAWS <= COVERED[1], covered / DRAWS


def test_the_uncorrected_interval_would_cover_too_rarely():
    """Without the correction (n_test / n_train = 0) the same draws are covered far less than 95 %
    of the time: the correction is what makes the interval honest."""
    rng = np.random.default_rng(3)
    folds, repeats = 5, 2
    j, rho, truth = folds * repeats, 1 / folds, 0.0  # one fold of five scored, four trained on
    cov = 0.03**2 * ((1 - rho) * np.eye(j) + rho * np.ones((j, j)))
    draws = [rng.multivariate_normal(np.full(j, truth), cov) for _ in range(DRAWS)]
    naive = [corrected_resampled_t(d, n_train=1, n_test=0) for d in draws]
    assert sum(found.low <= truth <= found.high for found in naive) / DRAWS < 0.85


def test_the_report_gives_the_views_gain_paired_with_its_interval():
    """The test-time views' gain per mode: paired over the same images and the repeats' heads, with
    its interval; an evaluation of an earlier version (no image's outcome kept) gets the mean alone."""
    from augcache.report.evaluation import tta_section

    rng = np.random.default_rng(4)
    rows = []
    for repeat in range(2):
        plain = (rng.random(60) < 0.7).astype(int)
        views = plain.copy()
        views[:4] = 1  # the views right on a few images more
        for head in ("final", "best"):
            rows.append({"run": f"results/train/cached/k2_r{repeat}", "head": head, "mode": "cached", "k": 2,
                         "repeat": repeat, "accuracy": plain.mean(), "macro_accuracy": plain.mean(),
                         "tta_accuracy": views.mean(), "tta_macro_accuracy": views.mean(),
                         "correct": plain.tolist(), "tta_correct": views.tolist()})
    gain = tta_section({"tta_views": 2, "runs": rows}, 2)["rows"][0]["gain"]
    expected = paired_bootstrap([r["tta_correct"] for r in rows[::2]], [r["correct"] for r in rows[::2]])
    assert gain == f"{expected.mean:+.3f} ({expected.low:+.3f} to {expected.high:+.3f})" and expected.mean > 0
    earlier = [{k: v for k, v in r.items() if k not in ("correct", "tta_correct")} for r in rows]
    assert tta_section({"tta_views": 2, "runs": earlier}, 2)["rows"][0]["gain"] == f"{expected.mean:+.3f}"


def _outcomes(rng, accuracy: dict, n=120, repeats=2):
    """{(mode, K): {repeat: outcomes}}: each mode right on an image with its own probability, the
    images shared (an easy image is easy for every mode)."""
    ease = rng.random((repeats, n))
    return {key: {r: (ease[r] + 0.1 * rng.standard_normal(n) < p).astype(int).tolist() for r in range(repeats)}
            for key, p in accuracy.items()}


def _table(rows):
    import pandas as pd

    from augcache.report.tables import SPEEDUP

    return pd.DataFrame([{"mode": m, "k": k, "repeats": 2, "final_val_accuracy_mean": acc, "final_val_accuracy_sd": 0.01,
                          "final_val_macro_accuracy_mean": acc, "final_val_macro_accuracy_sd": 0.01,
                          "end_to_end_seconds": s, "total_seconds": s, "disk_bytes": 1e6, SPEEDUP: 100.0 / s}
                         for m, k, acc, s in rows])


def test_the_headline_judges_cached_against_on_the_fly_by_the_paired_interval():
    from augcache.report.headline import headline

    rng = np.random.default_rng(5)
    table = _table([("cached", 5, 0.70, 25.0), ("cached", 2, 0.69, 15.0), ("onthefly", None, 0.70, 100.0)])
    same = _outcomes(rng, {("cached", 5): 0.70, ("cached", 2): 0.70, ("onthefly", None): 0.70})
    text = headline(table, 5, 1.0, outcomes=same)
    assert "On this data cached augmentation pays: it is as accurate as on the fly (" in text
    assert "points, 95 % interval " in text and "120 images × 2 repeats) and 4.0× faster end to end. " in text
    assert "This data cannot tell apart differences under " in text
    assert "Recommended K: 2, the smallest K not shown less accurate than the best K (5) by a paired 95 % interval" in text
    worse = _outcomes(rng, {("cached", 5): 0.45, ("cached", 2): 0.45, ("onthefly", None): 0.75})
    text = headline(table, 5, 1.0, outcomes=worse)
    assert "does not pay: it is less accurate than on the fly (-" in text and "cannot tell apart" not in text


def test_the_side_by_side_verdict_compares_each_mode_with_on_the_fly_paired():
    from augcache.report.side_by_side import side_by_side_table, verdict

    rng = np.random.default_rng(6)
    table = _table([("noaug", None, 0.5, 10.0), ("cached", 5, 0.8, 25.0), ("onthefly", None, 0.7, 100.0)])
    side = side_by_side_table(table, 5)
    outcomes = _outcomes(rng, {("noaug", None): 0.5, ("cached", 5): 0.85, ("onthefly", None): 0.7})
    said = verdict(side, outcomes)
    assert said.startswith("Side by side, cached (augmentation cache), K=5 wins on this data: it is more accurate "
                           "than on the fly (fresh numbers every epoch)")
    assert "no augmentation is less accurate than it (" in said and "95 % interval" in said
    # runs of an earlier version, without image outcomes: the sd rule, as before
    assert "one sd" in verdict(side, {})


def test_every_row_of_the_side_by_side_table_has_its_paired_cell():
    """The k-NN rows beside the modes' paired differences: the page renders, each mode's cell holds
    its interval, a k-NN bank's too where it kept its outcomes (an earlier version's is empty)."""
    from augcache.report.page import side_by_side_section
    from augcache.report.side_by_side import side_by_side_table

    rng = np.random.default_rng(7)
    side = side_by_side_table(_table([("noaug", None, 0.5, 10.0), ("cached", 5, 0.8, 25.0),
                                      ("onthefly", None, 0.7, 100.0)]), 5)
    outcomes = _outcomes(rng, {("noaug", None): 0.5, ("cached", 5): 0.8, ("onthefly", None): 0.7})
    bank = {"accuracy": 0.6, "macro_accuracy": 0.6, "seconds": 1.0, "extraction_seconds": 2.0, "disk_bytes": 1e5}
    kept = (rng.random(len(outcomes[("onthefly", None)][0])) < 0.6).astype(int).tolist()
    knn = {"k": 3, "temperature": 0.07, "banks": [dict(bank, bank="unaugmented"),
                                                  dict(bank, bank="2 cached epochs", correct=kept)]}
    section = side_by_side_section(side, knn, None, outcomes)
    cells = {row.get("bank", row["mode"]): row["paired"] for row in section["rows"]}
    assert section["reference"] == "on the fly (fresh numbers every epoch)"
    assert cells["onthefly"] == "" and cells["unaugmented"] == "" and " to " in cells["cached"] and " to " in cells["noaug"]
    mean = np.mean([np.array(kept) - np.array(o) for o in outcomes[("onthefly", None)].values()])
    assert cells["2 cached epochs"].startswith(f"{100 * mean:+.1f} (")
    import jinja2

    template = jinja2.Environment(loader=jinja2.PackageLoader("augcache.report", "templates"),
                                  undefined=jinja2.StrictUndefined).get_template("report.html")
    source = template.environment.loader.get_source(template.environment, "report.html")[0]
    table = source[source.index('<table id="side-by-side">'):source.index("</table>", source.index('<table id="side-by-side">'))]
    html = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(table).render(side=section)
    assert html.count('data-col="paired"') == len(section["rows"])

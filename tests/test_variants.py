"""Side-by-side variants of the cache: each under results/variants/{name}/, computed once, never
touching the default cache, compared in one report."""

import hashlib
import re

from test_workflow import scheduled_jobs


def digests(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_variant_runs_beside_the_default_cache_and_is_reported(swept, tmp_path):
    config, finished = swept
    flow = finished.clone(tmp_path / "project")
    default = {part: digests(flow.path(f"results/{part}"))
               for part in ("dataset", "manifest", "features", "train", "sweep", "model")}

    with_variant = dict(config, variants={"rot10": {"augment": {"rotation_range": 10}}})
    jobs = [rule for rule, _ in scheduled_jobs(flow.run(with_variant, "-n").stdout)]
    own = {"make_report", "all"}
    assert jobs and all(rule.startswith("variant_rot10_") or rule in own for rule in jobs), jobs
    assert "variant_rot10_extract_epoch" in jobs and "extract_epoch" not in jobs

    flow.run(with_variant)
    assert {part: digests(flow.path(f"results/{part}")) for part in default} == default
    variant = flow.path("results/variants/rot10/results")
    import pandas as pd

    ours = pd.read_csv(flow.path("results/manifest/epoch_0.csv"))
    theirs = pd.read_csv(variant / "manifest/epoch_0.csv")
    assert (theirs["rotation"].abs() <= 10).all() and (ours["rotation"].abs() > 10).any()
    assert (variant / "features/train/epoch_1.h5").exists()
    # what the variant shares with the default cache is reused, not computed again
    for log in ("index_dataset.log", "check_conv_base.log", "extract/val.log"):
        assert re.search(r"reused [0-9a-f]{64}", (variant / "logs" / log).read_text()), log
    assert "img/s" in (variant / "logs/extract/epoch_0.log").read_text()  # its own augmentation: computed
    report = flow.path("results/report/report.html").read_text()
    assert 'data-variant="default"' in report and 'data-variant="rot10"' in report
    # computed once: nothing more to do
    assert not scheduled_jobs(flow.run(with_variant, "-n").stdout)

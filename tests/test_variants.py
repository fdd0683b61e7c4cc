"""Side-by-side variants of the cache: each under results/variants/{name}/, computed once, never
touching the default cache, compared in one report."""

import hashlib

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
    report = flow.path("results/report/report.html").read_text()
    assert 'data-variant="default"' in report and 'data-variant="rot10"' in report
    # computed once: nothing more to do
    assert not scheduled_jobs(flow.run(with_variant, "-n").stdout)


def test_the_estimate_counts_every_variants_stores(swept, tmp_path):
    from augcache.cli import estimate
    from conftest import ROOT
    from test_storage import overlay_file

    config, finished = swept
    flow = finished.clone(tmp_path / "project")
    with_variant = dict(config, variants={"u8": {"cache": {"dtype": "uint8"}}})
    flow.run(with_variant, "results/variants/u8/results/features/train.h5",
             "results/variants/u8/results/features/val.h5")
    result = estimate([ROOT / "config/config.yaml", overlay_file(with_variant, tmp_path)], workdir=flow.root)
    own = estimate([ROOT / "config/config.yaml", overlay_file(config, tmp_path)], workdir=flow.root)
    variant = {p: b for p, b in result["stores"].items() if p.startswith("results/variants/u8/")}
    assert set(result["stores"]) == set(own["stores"]) | set(variant)
    assert result["total_bytes"] == own["total_bytes"] + result["variants_bytes"]["u8"]
    for path in ("features/train/epoch_0.h5", "features/val.h5", "dataset/pixels.h5"):
        store = f"results/variants/u8/results/{path}"
        assert variant[store] <= flow.path(store).stat().st_size <= result["stores_at_most"][store], store

rule write_manifest:
    input:
        INDEX,
    output:
        MANIFEST,
    log:
        f"{LOGS}/{{rep}}manifest/epoch_{{epoch}}.log",
    params:
        augment=config["augment"],
        seed=manifest_seed,
    conda:
        ENV
    script:
        "../../scripts/write_manifest.py"

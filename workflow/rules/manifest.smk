rule write_manifest:
    input:
        INDEX,
    output:
        MANIFEST,
    log:
        f"{LOGS}/{{rep}}manifest/epoch_{{epoch}}.log",
    conda:
        ENV
    params:
        augment=config["augment"],
        seed=manifest_seed,
    script:
        "../../scripts/write_manifest.py"

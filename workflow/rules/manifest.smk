rule write_manifest:
    input:
        INDEX,
    output:
        MANIFEST,
    log:
        f"{LOGS}/manifest/epoch_{{epoch}}.log",
    params:
        augment=config["augment"],
        seed=config["seed"],
    wildcard_constraints:
        epoch=r"\d+",
    conda:
        ENV
    script:
        "../../scripts/write_manifest.py"

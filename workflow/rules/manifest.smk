rule write_manifest:
    input:
        INDEX,
    output:
        MANIFEST,
    log:
        JOBS["write_manifest"].log(),
    benchmark:
        JOBS["write_manifest"].benchmark()
    conda:
        ENV
    resources:
        mem_mb=manifest_mem_mb,
    # crop and erasing boxes are whole pixels of the images augmented (size); with eval.folds
    # (pooled), the epochs cover every labelled image, train and val
    params:
        **SETTINGS.pooled_params(),
        augment=config["augment"],
        seed=manifest_seed,
        size=SETTINGS.pixel_size,
    script:
        "../../scripts/write_manifest.py"


# eval.folds: which of F stratified, seeded folds each labelled image is in, one split per repeat
rule write_folds:
    input:
        INDEX,
    output:
        FOLDS,
    log:
        JOBS["write_folds"].log(),
    benchmark:
        JOBS["write_folds"].benchmark()
    conda:
        ENV
    params:
        folds=SETTINGS.folds,
        seed=manifest_seed,
    script:
        "../../scripts/write_folds.py"

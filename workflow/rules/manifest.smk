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
    params:
        augment=config["augment"],
        seed=manifest_seed,
        # crop and erasing boxes are whole pixels of the images augmented
        size=SETTINGS.pixel_size,
    script:
        "../../scripts/write_manifest.py"

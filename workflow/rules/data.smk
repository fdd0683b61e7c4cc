rule make_demo_data:
    output:
        directory(DEMO_IMAGES),
    log:
        JOBS["make_demo_data"].log(),
    benchmark:
        JOBS["make_demo_data"].benchmark()
    conda:
        ENV
    params:
        demo=config["demo"],
        seed=config["seed"],
    script:
        "../../scripts/make_demo_data.py"


rule make_demo_base:
    output:
        DEMO_BASE,
    log:
        JOBS["make_demo_base"].log(),
    benchmark:
        JOBS["make_demo_base"].benchmark()
    conda:
        ENV
    threads: 2
    params:
        demo=config["demo"],
        image_size=config["data"]["image_size"],
        seed=config["seed"],
        # the base is trained, so its weights depend on the backend
        backend=SETTINGS.backend,
    script:
        "../../scripts/make_demo_base.py"


rule fetch_weights:
    output:
        SETTINGS.fetched_weights,
    log:
        JOBS["fetch_weights"].log(),
    benchmark:
        JOBS["fetch_weights"].benchmark()
    conda:
        ENV
    params:
        base=config["conv_base"],
        image_size=config["data"]["image_size"],
    script:
        "../../scripts/fetch_weights.py"


# Its output is named by a hash of its params: a check that fails (a typo in conv_base) leaves the
# record of the good setting alone, so going back to it recomputes nothing.
rule check_conv_base:
    input:
        unpack(pixel_input),
        base_files=base_files,
    output:
        SETTINGS.base_check_record(),
    log:
        JOBS["check_conv_base"].log(key=SETTINGS.base_check_key()),
    benchmark:
        # named by the check's key like its output: a failed check of another setting leaves this alone
        JOBS["check_conv_base"].benchmark(key=SETTINGS.base_check_key())
    conda:
        ENV
    threads: 2
    params:
        **SETTINGS.base_check_params(),
    script:
        "../../scripts/check_conv_base.py"


rule describe_conv_base:
    input:
        base=SETTINGS.base_check_record(),
        index=INDEX,
    output:
        BASE_INFO,
    log:
        JOBS["describe_conv_base"].log(),
    benchmark:
        JOBS["describe_conv_base"].benchmark()
    conda:
        ENV
    params:
        storage=SETTINGS.storage_params(),
    script:
        "../../scripts/describe_conv_base.py"


rule index_dataset:
    input:
        unpack(index_input),
    output:
        **index_outputs(),
    log:
        JOBS["index_dataset"].log(),
    benchmark:
        JOBS["index_dataset"].benchmark()
    conda:
        ENV
    threads: all_cores() if SETTINGS.decode_shards == 1 else 1
    params:
        **index_pixel_params(),
        **test_params(),
        source=SETTINGS.named_source,
        val_fraction=config["data"]["val_fraction"],
        on_bad_image=config["data"]["on_bad_image"],
        max_image_pixels=config["data"]["max_image_pixels"],
        seed=config["seed"],
        # with decode shards, the files are walked by list_dataset, whose candidates are an input
        fingerprint=data_fingerprint if SETTINGS.decode_shards == 1 else "listed",
    script:
        "../../scripts/index_dataset.py"


if SETTINGS.decode_shards > 1:

    # The files are listed once; shard jobs check and decode a part each (one decode per file);
    # the index is made from their lists of bad files, the pixel store merged from their pixels.
    rule list_dataset:
        input:
            unpack(demo_images_input),
        output:
            candidates=temp(CANDIDATES),
            skipped=temp(LISTING_SKIPPED),
        log:
            JOBS["list_dataset"].log(),
        benchmark:
            JOBS["list_dataset"].benchmark()
        conda:
            ENV
        params:
            **test_params(),
            source=SETTINGS.named_source,
            fingerprint=data_fingerprint,
        script:
            "../../scripts/list_dataset.py"

    rule decode_pixels:
        input:
            CANDIDATES,
        output:
            pixels=temp(PIXEL_SHARD),
            skipped=temp(PIXEL_SHARD_SKIPPED),
        log:
            JOBS["decode_pixels"].log(),
        benchmark:
            JOBS["decode_pixels"].benchmark()
        conda:
            ENV
        threads: 4
        params:
            **SETTINGS.pixel_params(),
            max_image_pixels=config["data"]["max_image_pixels"],
            shards=SETTINGS.decode_shards,
        script:
            "../../scripts/decode_pixels.py"

    rule merge_pixels:
        input:
            shards=pixel_shards,
            index=INDEX,
        output:
            PIXELS,
        log:
            JOBS["merge_pixels"].log(),
        benchmark:
            JOBS["merge_pixels"].benchmark()
        # a light copy on the submitting host (defined only with data.decode_shards > 1)
        localrule: True
        conda:
            ENV
        script:
            "../../scripts/merge_pixels.py"

rule make_demo_data:
    output:
        directory(DEMO_IMAGES),
    log:
        f"{LOGS}/make_demo_data.log",
    params:
        demo=config["demo"],
        seed=config["seed"],
    conda:
        ENV
    script:
        "../../scripts/make_demo_data.py"


rule make_demo_base:
    output:
        DEMO_BASE,
    log:
        f"{LOGS}/make_demo_base.log",
    params:
        demo=config["demo"],
        image_size=config["data"]["image_size"],
        seed=config["seed"],
    threads: 2
    conda:
        ENV
    script:
        "../../scripts/make_demo_base.py"


rule index_dataset:
    input:
        index_input,
    output:
        INDEX,
    log:
        f"{LOGS}/index_dataset.log",
    params:
        data_dir=data_dir(),
        val_fraction=config["data"]["val_fraction"],
        seed=config["seed"],
        fingerprint=data_fingerprint(),
    conda:
        ENV
    script:
        "../../scripts/index_dataset.py"

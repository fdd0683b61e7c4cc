# variants: each name is this workflow again, with its overlay of the augment, conv_base,
# data.image_size and cache keys, writing under results/variants/{name}/ (its own manifests,
# stores and runs, never another's). Its rules are this workflow's, named variant_{name}_<rule>.
# Only the workflow's own files move there (results/…); the user's data, base files and presets are
# read where the config names them.
for VARIANT, VARIANT_SETTINGS in VARIANTS.items():
    VARIANT_MODULE = f"variant_{VARIANT}_"
    workflow.module(
        VARIANT_MODULE,
        snakefile=workflow.main_snakefile,
        config=VARIANT_SETTINGS.config,
        replace_prefix={"results/": f"{VARIANT_PREFIX.format(name=VARIANT)}/results/"},
    )

    use rule * from VARIANT_MODULE as VARIANT_MODULE*

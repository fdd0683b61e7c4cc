# variants: each name is this workflow again, with its overlay of the augment, conv_base,
# data.image_size and cache keys, writing under results/variants/{name}/ (its own manifests,
# stores and runs, never another's). Its rules are this workflow's, named variant_{name}_<rule>.
for VARIANT, VARIANT_SETTINGS in VARIANTS.items():
    VARIANT_MODULE = f"variant_{VARIANT}_"
    workflow.module(
        VARIANT_MODULE,
        snakefile=workflow.main_snakefile,
        config=VARIANT_SETTINGS.config,
        prefix=VARIANT_PREFIX.format(name=VARIANT),
    )

    use rule * from VARIANT_MODULE as VARIANT_MODULE*

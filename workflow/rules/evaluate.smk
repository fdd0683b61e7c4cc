# How heads are judged beyond plain validation accuracy (the eval section): test-time views of
# the validation images, every run's heads scored with them, and a k-NN classifier on the cache.


# a test-time view's numbers, drawn like an epoch's but from a seed stream of their own
use rule write_manifest as write_view_manifest with:
    output:
        TTA_MANIFEST,
    log:
        JOBS["write_view_manifest"].log(),
    benchmark:
        JOBS["write_view_manifest"].benchmark()
    # with eval.folds (pooled), the views cover every labelled image: each fold's run is scored
    # with its fold's
    params:
        **SETTINGS.tta_params(),
        **SETTINGS.pooled_params(),
        size=SETTINGS.pixel_size,


rule extract_view:
    input:
        unpack(pixel_input),
        unpack(base_input),
        manifest=TTA_MANIFEST,
    output:
        kinds.TTA.path,
    log:
        JOBS["extract_view"].log(),
    benchmark:
        JOBS["extract_view"].benchmark()
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
    params:
        **SETTINGS.extract_params(augment=SETTINGS.tta_params()["augment"]),
        **SETTINGS.pooled_params(),
    script:
        "../../scripts/extract_view.py"


rule evaluate_heads:
    input:
        unpack(evaluation_folds),
        heads=evaluated_files("head.keras"),
        best_heads=evaluated_files("best_head.keras"),
        summaries=evaluated_files("summary.json"),
        val=VAL_STORE,
        views=expand(TTA_STORE, view=range(SETTINGS.tta_views)),
        selection=SELECTION,
        index=INDEX,
    output:
        EVALUATION,
    log:
        JOBS["evaluate_heads"].log(),
    benchmark:
        JOBS["evaluate_heads"].benchmark()
    conda:
        STORED_FEATURES_ENV
    resources:
        gpu=STORED_FEATURES_GPU,
    script:
        "../../scripts/evaluate_heads.py"


rule evaluate_knn:
    input:
        unpack(knn_folds),
        val=VAL_STORE,
        noaug=NOAUG_STORE,
        stores=expand(EPOCH_STORE, repeat_dir="", epoch=SETTINGS.epochs()),
        index=INDEX,
    output:
        KNN,
    log:
        JOBS["evaluate_knn"].log(),
    benchmark:
        JOBS["evaluate_knn"].benchmark()
    conda:
        ENV
    params:
        **({"folds": SETTINGS.folds} if SETTINGS.folds else {}),
        knn=SETTINGS.knn_params(),
    script:
        "../../scripts/evaluate_knn.py"

from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.full_model import predict_folder

table = predict_folder(snakemake.input.model, snakemake.input.classes, snakemake.params.dir,
                       snakemake.params.batch_size)
table.to_csv(snakemake.output[0], index=False, lineterminator="\n")
print(table["label"].value_counts().to_string())

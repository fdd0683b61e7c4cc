from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.images import set_max_image_pixels

set_max_image_pixels(snakemake.config["data"]["max_image_pixels"])

from augcache.atomic import write_text_atomic
from augcache.full_model import predict_folder

table = predict_folder(snakemake.input.model, snakemake.input.classes, snakemake.params.dir,
                       snakemake.params.batch_size)
write_text_atomic(snakemake.output[0], table.to_csv(index=False, lineterminator="\n"))
print(table["label"].value_counts().to_string())

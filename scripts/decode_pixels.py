from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.images import set_max_image_pixels

set_max_image_pixels(snakemake.config["data"]["max_image_pixels"])

from augcache.pixels import decode_shard

decode_shard(
    snakemake.input[0],
    snakemake.output[0],
    snakemake.params.pixel_size,
    snakemake.params.resize,
    threads=snakemake.threads,
    shard=int(snakemake.wildcards.shard),
    shards=int(snakemake.params.shards),
)

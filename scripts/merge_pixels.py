from augcache.log import log_to

log_to(snakemake.log[0])

from augcache.pixels import merge_pixel_shards

attrs = merge_pixel_shards(snakemake.input, snakemake.output[0])
print(f"{attrs['n_images']} images, pixels sha256 {attrs['pixels_sha256']}")

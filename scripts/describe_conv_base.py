from augcache.log import log_to

log_to(snakemake.log[0])

from pathlib import Path

from augcache.atomic import write_text_atomic

write_text_atomic(snakemake.output[0], Path(snakemake.input[0]).read_text())

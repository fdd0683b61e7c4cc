import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # this workflow's own augcache package
from augcache.jobs.job import input_files, start_job

start_job(snakemake)

from augcache.data.listing import list_source, write_listing

params = snakemake.params
# the demo's images as the job's input names them (a variant's below its folder), or the user's data
images = input_files(snakemake, "images")
listing = list_source(images[0] if images else params.source, params.get("test_dir"))
write_listing(listing, snakemake.output.candidates, snakemake.output.skipped)
print(f"{len(listing[0])} file(s) listed, {len(listing[1])} problem(s) found listing them; "
      f"{snakemake.config['data']['decode_shards']} shard job(s) check and decode them")

"""What the workflow's jobs share: the config read once, the table of jobs, a job's start and finish, reuse keys and entries, sharded epochs, disk planning, GPUs, removal of unused entries."""

"""Every job of the workflow's DAG with its evaluated params, log, benchmark and script, as JSON
on stdout.

Run in a copy of the project: ``python dag_params.py overlay.yaml [target ...]``. It plans the
whole DAG (as with --forceall) without running a job, through Snakemake's API, so that a test can
read what each job is given through params.
"""

import json
import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings


def jobs(overlay: Path, targets: list[str]) -> list[dict]:
    with SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                                    config_settings=ConfigSettings(configfiles=[overlay]),
                                    snakefile=Path("Snakefile"), workdir=Path("."))
        dag_api = workflow_api.dag(dag_settings=DAGSettings(targets=set(targets), forceall=True))
        workflow = dag_api.workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        return [{"rule": job.rule.name, "params": dict(job.params.items()), "log": list(job.log),
                 "benchmark": str(job.benchmark) if job.benchmark else None,
                 "script": Path(job.rule.script).stem if job.rule.script else None} for job in workflow.dag.jobs]


if __name__ == "__main__":
    print(json.dumps(jobs(Path(sys.argv[1]), sys.argv[2:]), default=repr))

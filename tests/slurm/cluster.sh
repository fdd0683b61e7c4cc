#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the integration test (needs root).
#
#   tests/slurm/cluster.sh start   install slurm-wlm and munge if missing, start munged, slurmctld, slurmd
#   tests/slurm/cluster.sh stop    stop them again
#
# The node declares two GPUs that are terminals (/dev/tty0, /dev/tty1): SLURM hands them out as gres/gpu
# and sets CUDA_VISIBLE_DEVICES, which is all the scheduling test needs. Finished jobs are recorded by
# jobcomp/filetxt in $AUGCACHE_SLURM_DIR/jobcomp.log (default /tmp/augcache-slurm).
set -euo pipefail

dir="${AUGCACHE_SLURM_DIR:-/tmp/augcache-slurm}"
host="$(hostname -s)"

start() {
    if [ "$(id -u)" != 0 ]; then
        echo "cluster.sh: must run as root to start SLURM" >&2
        exit 3
    fi
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq slurm-wlm munge >/dev/null
    fi
    stop >/dev/null 2>&1 || true
    mkdir -p "$dir" /etc/slurm /var/spool/slurmctld /var/spool/slurmd /run/munge /var/log/munge /var/lib/munge
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    runuser -u munge -- munged --force
    : > "$dir/jobcomp.log"
    cat > /etc/slurm/slurm.conf <<CONF
ClusterName=augcache
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
MpiDefault=none
GresTypes=gpu
NodeName=$host CPUs=16 RealMemory=32000 Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    cat > /etc/slurm/gres.conf <<CONF
AutoDetect=off
NodeName=$host Name=gpu File=/dev/tty[0-1]
CONF
    slurmctld
    slurmd
    for _ in $(seq 60); do
        if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix)'; then
            echo "SLURM up: node $host, 2 GPUs, partition main"
            return 0
        fi
        sleep 1
    done
    echo "cluster.sh: SLURM did not come up; logs in $dir" >&2
    sinfo >&2 || true
    exit 1
}

stop() {
    scancel --user=root >/dev/null 2>&1 || true
    pkill -x slurmd || true
    pkill -x slurmctld || true
    pkill -x munged || true
    sleep 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

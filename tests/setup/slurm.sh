#!/usr/bin/env bash
# A one-node SLURM cluster on this machine for tests/e2e/test_slurm.py (the SLURM profile,
# profiles/slurm, submitting the demo DAG through snakemake-executor-plugin-slurm).
#
#   - installs Debian's slurm-wlm (slurmctld, slurmd, slurm-client) and munge when missing;
#   - writes /etc/slurm/slurm.conf (one node = this host with its real CPUs and memory, two
#     partitions on it named like the profile's: `cpu` (default) and `gpu`; no accounting
#     database, so job states come from squeue: MinJobAge keeps finished jobs listed);
#   - starts munged, slurmctld and slurmd directly (no systemd here), each only when it is not
#     already running;
#   - checks that `sinfo` shows the node idle and that `srun hostname` runs a job.
#
# Safe to run again: what is installed or running is left alone. A slurm.conf that this script
# did not write (a real cluster's) is never overwritten: the script then only checks `sinfo`.
# Needs root (CI runs as root). Exits non-zero only when an install or a start fails.
set -euo pipefail

MARK="# written by ants tests/setup/slurm.sh"
CONF=/etc/slurm/slurm.conf
log() { echo "setup/slurm: $*"; }

if [ "$(id -u)" != 0 ]; then
    if command -v sinfo >/dev/null && sinfo -h >/dev/null 2>&1; then
        log "not root; a SLURM cluster answers, leaving it alone"; exit 0
    fi
    log "not root: cannot install or start SLURM (tests/e2e/test_slurm.py will skip)"; exit 0
fi

# -- packages -------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# -- munge ----------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown -R munge:munge /etc/munge && chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || { log "munged does not answer"; exit 1; }
fi

# -- slurm.conf -----------------------------------------------------------------------------
HOST=$(hostname -s)
# slurmd -C prints this node's real hardware: "NodeName=vm CPUs=2 ... RealMemory=24105"
HW=$(slurmd -C | head -1)
CPUS=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$HW")
MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HW")
NODE="NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN"

if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    log "$CONF was not written by this script: using that cluster as it is"
else
    mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
    NEW=$(cat <<EOF
$MARK
# A one-node test cluster: this host, its real CPUs and memory, two partitions on it.
ClusterName=antstest
SlurmctldHost=$HOST
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# no cgroups in a container: plain process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# finished jobs stay visible to squeue for an hour (the executor, and the test, read their state there)
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=60
$NODE
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST Default=NO MaxTime=INFINITE State=UP
EOF
)
    if [ ! -e "$CONF" ] || [ "$(cat "$CONF")" != "$NEW" ]; then
        log "writing $CONF ($NODE)"
        printf '%s\n' "$NEW" >"$CONF"
        # a changed config: running daemons must re-read it
        for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
            pid=$(cat "$pidfile" 2>/dev/null || true)
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                kill "$pid"
                for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            fi
        done
    fi
fi

# -- daemons --------------------------------------------------------------------------------
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if grep -qF "$MARK" "$CONF"; then
    if ! running /run/slurmctld.pid; then
        log "starting slurmctld"
        slurmctld   # daemonises, writes /run/slurmctld.pid
    fi
    for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.2; done
    scontrol ping | grep -q "is UP" || { log "slurmctld does not answer"; tail -20 /var/log/slurm/slurmctld.log; exit 1; }
    if ! running /run/slurmd.pid; then
        log "starting slurmd"
        slurmd
    fi
    # a node left DOWN/DRAIN by an earlier run (e.g. a killed slurmd) is put back
    for _ in $(seq 100); do
        state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1)
        case "$state" in idle*|mixed*|allocated*) break ;; down*|drain*) scontrol update NodeName="$HOST" State=RESUME || true ;; esac
        sleep 0.2
    done
fi

# -- check ----------------------------------------------------------------------------------
sinfo
state=$(sinfo -h -o %T | head -1)
case "$state" in
    idle*|mixed*|allocated*) ;;
    *) log "the node is '$state', not usable"; tail -20 /var/log/slurm/slurmd.log 2>/dev/null || true; exit 1 ;;
esac
out=$(timeout 60 srun -N1 -n1 --mem=100 hostname) || { log "srun hostname failed"; exit 1; }
log "srun hostname -> $out"

#!/usr/bin/env bash
# slurm/cluster-start.sh [DIR]: a one-node Slurm cluster on this machine, for tests and
# for trying the sbatch templates. munged, slurmctld and slurmd run with all their state,
# logs and PID files under DIR (default: $STORY_SLURM_DIR, else /tmp/storyrun-slurm);
# nothing under /etc is read for the cluster or written. The node is called `localhost`
# and has this machine's CPUs and 90% of its memory; one partition, `debug`.
#
#   eval "$(slurm/cluster-start.sh)"      # prints: export SLURM_CONF=DIR/slurm.conf
#   sbatch -n 2 slurm/render-cpu.sbatch configs/demo.yaml
#   slurm/cluster-stop.sh
#
# Running it again is harmless: daemons that are up are left alone (the existing
# slurm.conf is kept), missing ones are started. It returns once the node is idle, or
# fails after STORY_SLURM_START_TIMEOUT seconds (default 30) with the daemons' log tails.
#
# Environment (all optional):
#   STORY_SLURM_DIR            state directory when no argument is given
#   STORY_SLURM_PORT           slurmctld's port (slurmd uses the next one); default: the
#                              first free pair from 6817, so clusters in different
#                              directories can run side by side
#   STORY_SLURM_CPUS           CPUs the node offers (default: nproc, at least 2)
#   STORY_SLURM_START_TIMEOUT  seconds to wait for the node to become idle
#
# Needs (Debian): apt-get install --no-install-recommends slurmctld slurmd slurm-client
# munge. Runs as root (what CI containers are); slurmd launches jobs as their submitter.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
umask 022  # munged refuses group- or world-writable key, log and socket directories

DIR=${1:-${STORY_SLURM_DIR:-/tmp/storyrun-slurm}}
TIMEOUT=${STORY_SLURM_START_TIMEOUT:-30}

die() {
    echo "cluster-start: $*" >&2
    exit 1
}

missing=()
for tool in munged slurmctld slurmd sinfo scontrol sbatch srun; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
((${#missing[@]} == 0)) || die "not installed: ${missing[*]} (Debian: apt-get install -y \
--no-install-recommends slurmctld slurmd slurm-client munge)"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
# munged refuses directories that others can write to; the state directories hold keys.
chmod 0755 "$DIR"
mkdir -p "$DIR/munge" "$DIR/state/ctld" "$DIR/state/d" "$DIR/tmp" "$DIR/log" "$DIR/run"
chmod 0755 "$DIR/munge"
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

# tail_logs: the last lines of every daemon log, for failure messages.
tail_logs() {
    local f
    for f in "$DIR/munge/munged.log" "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log"; do
        [[ -f $f ]] || continue
        echo "---- last lines of $f" >&2
        tail -n 15 "$f" >&2
    done
}

# running PIDFILE NAME: the PID file names a live process called NAME (not a reused PID).
running() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

# port_free PORT: nothing accepts connections on it.
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for SECONDS COMMAND...: polls every 0.1 s until COMMAND succeeds.
wait_for() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 10; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# ---- slurm.conf (kept when it exists: the daemons may be running with it) -------------
if [[ ! -f $CONF ]]; then
    if [[ -n ${STORY_SLURM_PORT:-} ]]; then
        port=$STORY_SLURM_PORT
    else
        port=6817
        while ! port_free "$port" || ! port_free $((port + 1)); do
            port=$((port + 2))
            ((port < 6917)) || die "no free port pair in 6817-6916; set STORY_SLURM_PORT"
        done
    fi
    cpus=${STORY_SLURM_CPUS:-$(nproc)}
    ((cpus >= 2)) || cpus=2
    mem_mib=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
    user=$(id -un)
    cat >"$CONF.tmp" <<EOF
# Written by storyrun's slurm/cluster-start.sh: a one-node cluster on localhost.
ClusterName=storyrun
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state/ctld
SlurmdSpoolDir=$DIR/state/d
TmpFS=$DIR/tmp
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups (containers rarely allow them): processes are tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Start jobs the moment they are submitted.
SchedulerParameters=batch_sched_delay=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=pmix
# A node that was down comes back as soon as its slurmd registers.
ReturnToService=2
# The node offers what this file says, whatever slurmd finds (CI machines vary).
SlurmdParameters=config_overrides
# Finished jobs stay visible to scontrol for an hour (there is no accounting database).
MinJobAge=3600
MailProg=/bin/true
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem_mib
PartitionName=debug Nodes=localhost Default=YES MaxTime=30 State=UP
EOF
    mv "$CONF.tmp" "$CONF"
fi

# ---- munged ----------------------------------------------------------------------
MUNGE_SOCKET=$DIR/munge/munge.socket
if ! running "$DIR/munge/munged.pid" munged; then
    if [[ ! -s $DIR/munge/munge.key ]]; then
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$DIR/munge/munge.key"
        else
            dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
        fi
    fi
    chmod 0600 "$DIR/munge/munge.key"
    munged --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/munged.seed" ||
        { tail_logs; die "munged did not start (its messages are above)"; }
fi
if command -v munge >/dev/null && command -v unmunge >/dev/null; then
    munge_ok() { munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET"; }
    wait_for 10 munge_ok || { tail_logs; die "munged at $MUNGE_SOCKET does not answer"; }
fi

# ---- slurmctld, then slurmd ------------------------------------------------------
if ! running "$DIR/run/slurmctld.pid" slurmctld; then
    # -i: ignore saved state (jobs of an earlier run in this directory are forgotten).
    slurmctld -f "$CONF" -i || { tail_logs; die "slurmctld did not start (logs above)"; }
fi
wait_for "$TIMEOUT" scontrol ping ||
    { tail_logs; die "slurmctld does not answer after ${TIMEOUT}s (logs above)"; }
if ! running "$DIR/run/slurmd.pid" slurmd; then
    # -N: this machine is not called localhost, the node in slurm.conf is.
    slurmd -f "$CONF" -N localhost || { tail_logs; die "slurmd did not start (logs above)"; }
fi

# ---- wait for the node -----------------------------------------------------------
node_idle() {
    local state
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1)
    case $state in
    idle | mixed | allocated) return 0 ;;
    # A node left down or drained by an earlier run: ask for it back once per poll.
    down* | drain* | fail*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 ;;
    esac
    return 1
}
if ! wait_for "$TIMEOUT" node_idle; then
    echo "cluster-start: node state: $(sinfo -h -N -o '%T %E' 2>&1)" >&2
    tail_logs
    die "the node did not become idle within ${TIMEOUT}s (STORY_SLURM_START_TIMEOUT)"
fi

echo "export SLURM_CONF=$CONF" >"$DIR/env.sh"
echo "cluster-start: node localhost is up; state in $DIR" >&2
echo "export SLURM_CONF=$CONF"

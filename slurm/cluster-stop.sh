#!/usr/bin/env bash
# slurm/cluster-stop.sh [DIR]: stops the cluster that slurm/cluster-start.sh started in DIR
# (default: $STORY_SLURM_DIR, else /tmp/storyrun-slurm). Jobs still queued or running are
# cancelled first; then slurmd, slurmctld and munged get SIGTERM (SIGKILL after 10 s),
# found by their PID files only. Logs and state stay in DIR. Harmless when nothing runs.
set -uo pipefail
export PATH=$PATH:/usr/sbin:/sbin

DIR=${1:-${STORY_SLURM_DIR:-/tmp/storyrun-slurm}}
[[ -d $DIR ]] || exit 0
DIR=$(cd "$DIR" && pwd)
export SLURM_CONF=$DIR/slurm.conf

# pid_of PIDFILE NAME: the PID when it names a live process called NAME, else nothing.
pid_of() {
    local pid
    [[ -s $1 ]] || return 0
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] && echo "$pid"
}

# stop PIDFILE:NAME...: SIGTERM to all of them at once (each daemon takes ~2 s to
# shut down), wait up to 10 s, then SIGKILL what is left.
stop() {
    local spec pid i pids=() names=()
    for spec in "$@"; do
        pid=$(pid_of "${spec%%:*}" "${spec##*:}")
        rm -f "${spec%%:*}"
        [[ -n $pid ]] || continue
        kill -TERM "$pid" 2>/dev/null
        pids+=("$pid")
        names+=("${spec##*:}")
    done
    for ((i = 0; i < 100; i++)); do
        kill -0 "${pids[@]}" 2>/dev/null || break
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if kill -0 "${pids[i]}" 2>/dev/null; then
            echo "cluster-stop: ${names[i]} (${pids[i]}) ignored SIGTERM for 10 s; killing it" >&2
            kill -KILL "${pids[i]}" 2>/dev/null
        fi
    done
}

if [[ -n $(pid_of "$DIR/run/slurmctld.pid" slurmctld) && -f $SLURM_CONF ]]; then
    # Cancel this cluster's jobs so their steps end while slurmd can still clean up.
    jobs=$(squeue -h -o %i 2>/dev/null)
    if [[ -n $jobs ]]; then
        # shellcheck disable=SC2086 # one job id per word
        scancel $jobs 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            [[ -z $(squeue -h -t pending,running,completing -o %i 2>/dev/null) ]] && break
            sleep 0.1
        done
    fi
fi
stop "$DIR/run/slurmd.pid:slurmd" "$DIR/run/slurmctld.pid:slurmctld"
stop "$DIR/munge/munged.pid:munged"  # last: the others authenticate through it
echo "cluster-stop: stopped the cluster in $DIR" >&2

#!/usr/bin/env bash
# tests/slurm/run_sbatch.sh SCRIPT [SBATCH_ARGS...] [-- SCRIPT_ARGS...]
#
# Runs one batch job on a private one-node Slurm cluster and says how it ended:
# starts the cluster (slurm/cluster-start.sh) in a fresh directory, submits
# `sbatch SBATCH_ARGS SCRIPT SCRIPT_ARGS`, polls `scontrol -o show job` until the job is
# finished (sacct needs an accounting database, which the test cluster has not), prints the
# job's output, and stops the cluster whatever happens. The job inherits this environment
# (sbatch --export=ALL) and runs in the current directory.
#
# Exit status: 0 when the job COMPLETED with exit code 0; 1 otherwise (the job record and
# the daemon log tails are printed); 77 with "skipped" when Slurm is not installed at all.
# The last line on success: "run_sbatch: job ID COMPLETED exit 0:0 restarts N in S s".
#
# Environment (all optional):
#   STORY_SLURM_JOB_TIMEOUT  seconds to wait for the job (default 45)
#   STORY_SBATCH_ON_RUNNING  a bash command run once when the job is first RUNNING, with
#                            SLURM_JOB_ID and SLURM_CONF set (e.g. to signal or requeue it)
#   STORY_SLURM_KEEP=1       keep the cluster directory (its path is printed)
#
# A requeued job (scontrol requeue, as the render templates do on exit code 75) is held by
# Slurm for about two minutes (Reason=BeginTime) before it may start again; here its start
# time is set to now instead (after STORY_SLURM_REQUEUE_DELAY seconds, default 8, see below),
# so a test sees the requeued run soon.
set -uo pipefail
export PATH=$PATH:/usr/sbin:/sbin
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

if (($# < 1)); then
    echo "usage: run_sbatch.sh SCRIPT [SBATCH_ARGS...] [-- SCRIPT_ARGS...]" >&2
    exit 2
fi
SCRIPT=$1
shift
SBATCH_ARGS=()
while (($#)) && [[ $1 != -- ]]; do
    SBATCH_ARGS+=("$1")
    shift
done
(($#)) && shift
SCRIPT_ARGS=("$@")

have_any=0
for tool in slurmctld slurmd sbatch srun; do
    command -v "$tool" >/dev/null && have_any=1
done
if ((!have_any)); then
    echo "skipped: Slurm is not installed (Debian: apt-get install -y --no-install-recommends" \
        "slurmctld slurmd slurm-client munge)"
    exit 77
fi

TIMEOUT=${STORY_SLURM_JOB_TIMEOUT:-45}
# Start + job + stop stay inside ctest's limit, so a stuck job still gets cleaned up.
export STORY_SLURM_START_TIMEOUT=${STORY_SLURM_START_TIMEOUT:-20}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/storyrun-slurm.XXXXXX")
export SLURM_CONF=$DIR/slurm.conf

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    "$ROOT/slurm/cluster-stop.sh" "$DIR" 2>/dev/null
    if [[ ${STORY_SLURM_KEEP:-0} == 1 ]]; then
        echo "run_sbatch: kept the cluster directory $DIR"
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log_tails() {
    local f
    for f in "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log"; do
        [[ -f $f ]] || continue
        echo "---- last lines of $f"
        tail -n 20 "$f"
    done
}

# field RECORD NAME: NAME's value in a one-line scontrol record (values have no spaces,
# except in fields we do not read).
field() {
    local re="(^| )$2=([^ ]*)"
    [[ $1 =~ $re ]] && echo "${BASH_REMATCH[2]}"
}

# A random free port pair, so that test clusters started at the same moment (parallel
# ctest runs, several build folders) do not both pick 6817.
if [[ -z ${STORY_SLURM_PORT:-} ]]; then
    for ((try = 0; try < 50; try++)); do
        port=$((20000 + 2 * (RANDOM % 5000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
            ! (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null; then
            export STORY_SLURM_PORT=$port
            break
        fi
    done
fi

if ! "$ROOT/slurm/cluster-start.sh" "$DIR" >/dev/null; then
    echo "run_sbatch: FAIL: the Slurm cluster did not start (reason above)"
    exit 1
fi
echo "run_sbatch: cluster in $DIR, slurmctld on port $(sed -n 's/^SlurmctldPort=//p' "$SLURM_CONF")"

t0=$(date +%s)
# Our --output comes first so that one in SBATCH_ARGS or the script wins.
if ! job=$(sbatch --parsable --output="$DIR/job-%j.out" "${SBATCH_ARGS[@]}" "$SCRIPT" \
    "${SCRIPT_ARGS[@]}" 2>&1); then
    echo "run_sbatch: FAIL: sbatch refused the job: $job"
    exit 1
fi
job=${job%%;*}
echo "run_sbatch: submitted job $job: sbatch ${SBATCH_ARGS[*]} $SCRIPT ${SCRIPT_ARGS[*]}"

state="" record="" hook_done=0 requeued_at=0
deadline=$((t0 + TIMEOUT))
while :; do
    record=$(scontrol -o show job "$job" 2>&1)
    state=$(field "$record" JobState)
    case $state in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | \
        DEADLINE | PREEMPTED) break ;;
    RUNNING)
        if [[ -n ${STORY_SBATCH_ON_RUNNING:-} ]] && ((!hook_done)); then
            hook_done=1
            SLURM_JOB_ID=$job bash -c "$STORY_SBATCH_ON_RUNNING" ||
                echo "run_sbatch: warning: STORY_SBATCH_ON_RUNNING failed"
        fi
        ;;
    esac
    # Not at once: slurmd keeps a requeued job's id among the recently killed ones for a
    # few seconds and refuses to launch it meanwhile ("Job N already killed, do not launch
    # batch job"), which ends the job instead of rerunning it.
    if [[ $state == PENDING && $(field "$record" Reason) == BeginTime &&
        $(field "$record" Restarts) != 0 ]]; then
        if ((requeued_at == 0)); then
            requeued_at=$(date +%s)
        elif (($(date +%s) - requeued_at >= ${STORY_SLURM_REQUEUE_DELAY:-8})); then
            scontrol update JobId="$job" StartTime=now >/dev/null 2>&1
        fi
    else
        requeued_at=0
    fi
    # A held job (requeue-hold, special exit) never runs again by itself.
    if [[ $(field "$record" Reason) =~ ^(JobHeldAdmin|JobHeldUser|launch_failed_requeued_held)$ ]]; then
        state="HELD($(field "$record" Reason))"
        break
    fi
    if (($(date +%s) >= deadline)); then
        state="TIMED-OUT-WAITING(${state:-unknown})"
        break
    fi
    sleep 0.2
done
elapsed=$(($(date +%s) - t0))
exit_code=$(field "$record" ExitCode)
restarts=$(field "$record" Restarts)
out=$(field "$record" StdOut)

if [[ -n $out && -f $out ]]; then
    echo "---- job output ($out)"
    cat "$out"
    echo "---- end of job output"
fi
if [[ $state == COMPLETED && $exit_code == 0:0 ]]; then
    echo "run_sbatch: job $job COMPLETED exit $exit_code restarts ${restarts:-0} in $elapsed s"
    exit 0
fi
echo "run_sbatch: FAIL: job $job ended $state, exit code ${exit_code:-?}, after $elapsed s" \
    "(limit ${TIMEOUT}s: STORY_SLURM_JOB_TIMEOUT)"
echo "---- scontrol show job $job"
echo "$record" | tr ' ' '\n' | grep -v '^$'
log_tails
exit 1

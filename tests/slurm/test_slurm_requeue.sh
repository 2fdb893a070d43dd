#!/usr/bin/env bash
# tests/slurm/test_slurm_requeue.sh FAKE_RENDER OUTDIR: the stop-and-resume path of
# slurm/render-cpu.sbatch on a real Slurm cluster, with fake_render standing in for
# storyrun (STORYRUN=FAKE_RENDER). Once both ranks run, the job gets SIGUSR1 the way
# `#SBATCH --signal=USR1@120` delivers it (`scancel --signal=USR1`: every task of the job's
# steps, not the batch shell). Expected: both ranks agree to stop at the same unit and exit
# 75, srun returns 75, the script requeues the job, and the second run (Restarts=1)
# finishes the remaining units: every unit done exactly once, in order.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FAKE=$1
OUT=$2
rm -rf "$OUT"
mkdir -p "$OUT"

export STORYRUN=$FAKE
export STORY_SBATCH_ON_RUNNING="
for i in \$(seq 200); do
    [[ -f '$OUT/ready.0.0' && -f '$OUT/ready.0.1' ]] && break
    sleep 0.05
done
scancel --signal=USR1 \$SLURM_JOB_ID && echo 'test: sent SIGUSR1 to the job steps'"
bash "$HERE/run_sbatch.sh" "$ROOT/slurm/render-cpu.sbatch" --ntasks-per-node=2 \
    --cpus-per-task=1 --time=5 -- "$OUT" | tee "$OUT/run_sbatch.txt"
rc=${PIPESTATUS[0]}
((rc == 77)) && exit 77

checks=0 fails=0
check() {  # check DESCRIPTION COMMAND...
    local what=$1
    shift
    checks=$((checks + 1))
    if ! "$@"; then
        fails=$((fails + 1))
        echo "FAIL: $what"
    fi
}
check "run_sbatch.sh: job completed with exit 0 (status $rc)" test "$rc" -eq 0
check "the job was requeued exactly once" \
    grep -q "^run_sbatch: job [0-9]* COMPLETED exit 0:0 restarts 1 " "$OUT/run_sbatch.txt"

want=$(for ((u = 0; u < 60; u++)); do echo "unit $u"; done)
got=$(sed 's/ run [0-9]*$//' "$OUT/units.txt" 2>/dev/null)
check "units 0..59 each done once, in order (units.txt: $(wc -l <"$OUT/units.txt" 2>/dev/null) lines)" \
    test "$got" == "$want"

s0=$(cat "$OUT/stop.0.0" 2>/dev/null)
s1=$(cat "$OUT/stop.0.1" 2>/dev/null)
check "both ranks stopped on SIGUSR1 at the same unit: '$s0' / '$s1'" \
    test -n "$s0" -a "$s0" == "$s1"
check "rank 0 saw SIGUSR1 itself (delivered to every task): '$s0'" \
    test "${s0#* agreed SIGUSR1 local }" == SIGUSR1
stop_unit=$(echo "$s0" | awk '{print $2}')
resume_unit=$(awk '$4 == 1 { print $2; exit }' "$OUT/units.txt" 2>/dev/null)
check "run 1 resumed at the unit run 0 stopped before ($stop_unit vs $resume_unit)" \
    test -n "$stop_unit" -a "$stop_unit" == "$resume_unit"
check "run 1 was not stopped" test ! -e "$OUT/stop.1.0" -a ! -e "$OUT/stop.1.1"
check "progress summary of the stopped run in the job output" \
    grep -q "fake_render: stopped: units $stop_unit/60 in " "$OUT/run_sbatch.txt"
check "progress summary of the resumed run in the job output" \
    grep -q "fake_render: done: units 60/60 in .* ($stop_unit units were done before)" \
    "$OUT/run_sbatch.txt"
echo "slurm requeue: $checks checks, $fails failure(s)"
((fails == 0))

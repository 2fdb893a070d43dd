#!/usr/bin/env bash
# tests/slurm/test_slurm_ranks.sh PROGRAM OUTDIR: an sbatch job with 2 tasks on a real
# slurmctld + slurmd (started privately by run_sbatch.sh) runs `srun --mpi=pmix PROGRAM`;
# each rank must have written what it saw: MPI's rank and size equal to Slurm's task id
# and task count, and one node holding both ranks.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=$1
OUT=$2
rm -rf "$OUT"
mkdir -p "$OUT"

bash "$HERE/run_sbatch.sh" "$HERE/ranks.sbatch" --ntasks=2 -- "$PROG" "$OUT"
rc=$?
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
check "run_sbatch.sh: the job completed with exit code 0 (status $rc)" test "$rc" -eq 0
for r in 0 1; do
    want="rank $r size 2 local_rank $r local_size 2 procid $r ntasks 2 localid $r"
    got=$(cat "$OUT/rank$r.txt" 2>/dev/null || echo "(no file $OUT/rank$r.txt)")
    check "rank $r wrote '$got', want '$want'" test "$got" == "$want"
done
files=$(cd "$OUT" && echo *)
check "no file besides rank0.txt and rank1.txt in $OUT: $files" test "$files" == "rank0.txt rank1.txt"
echo "slurm ranks: $checks checks, $fails failure(s)"
((fails == 0))

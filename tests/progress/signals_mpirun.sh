#!/usr/bin/env bash
# tests/progress/signals_mpirun.sh MPIEXEC TEST_SIGNALS WORKDIR
#
# How signals reach the ranks of an mpirun job (Open MPI 4.1), and that the ranks then
# agree to stop at the same unit (test_signals wait: exits 75 once they agree):
#   usr1-mpirun  SIGUSR1 to mpirun is forwarded to every rank at once; mpirun exits 75
#   term-rank    SIGTERM to one rank's PID: only that rank sees it, both stop; exit 75
#   term-mpirun  SIGTERM to mpirun reaches every rank as SIGTERM, but mpirun then kills
#                the job odls_base_sigkill_timeout seconds later (1 s by default) and
#                exits 1 itself, not with the ranks' code: under mpirun only SIGUSR1
#                gives a clean, resumable stop
set -uo pipefail
MPIEXEC=$1
PROG=$2
WORK=$3
if ! "$MPIEXEC" --version 2>&1 | grep -q -E "Open MPI|OpenRTE"; then
    echo "skipped: $MPIEXEC is not Open MPI (these are Open MPI's forwarding rules)"
    exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none

fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# run_case NAME TARGET SIGNAL WANT_RC LOCAL0 LOCAL1: TARGET is "mpirun" or "rank1".
run_case() {
    local name=$1 target=$2 sig=$3 want_rc=$4 local0=$5 local1=$6
    local dir=$WORK/$name
    rm -rf "$dir"
    mkdir -p "$dir"
    "$MPIEXEC" -np 2 "$PROG" wait "$dir" >"$dir/out" 2>&1 &
    local mp=$!
    local i
    for ((i = 0; i < 200; i++)); do
        [[ -s $dir/ready.0 && -s $dir/ready.1 ]] && break
        sleep 0.05
    done
    if [[ ! -s $dir/ready.0 || ! -s $dir/ready.1 ]]; then
        fail "$name: the ranks did not start within 10 s"
        kill -KILL "$mp" 2>/dev/null
        wait "$mp"
        cat "$dir/out"
        return
    fi
    if [[ $target == mpirun ]]; then
        kill -"$sig" "$mp"
    else
        kill -"$sig" "$(cat "$dir/ready.1")"
    fi
    wait "$mp"
    local rc=$?
    [[ $rc == "$want_rc" ]] || fail "$name: mpirun exit code $rc, want $want_rc"
    local u0 u1
    u0=$(sed -n 's/^rank 0: stopped at unit \([0-9]*\): agreed SIG[A-Z0-9]*, local .*/\1/p' "$dir/out")
    u1=$(sed -n 's/^rank 1: stopped at unit \([0-9]*\): agreed SIG[A-Z0-9]*, local .*/\1/p' "$dir/out")
    [[ -n $u0 && $u0 == "$u1" ]] || fail "$name: ranks stopped at units '$u0' and '$u1'"
    grep -q "^rank 0: stopped at unit [0-9]*: agreed SIG$sig, local $local0\$" "$dir/out" ||
        fail "$name: rank 0 did not report agreed SIG$sig, local $local0"
    grep -q "^rank 1: stopped at unit [0-9]*: agreed SIG$sig, local $local1\$" "$dir/out" ||
        fail "$name: rank 1 did not report agreed SIG$sig, local $local1"
    grep -q "^signals wait: [0-9]* checks, 0 failure(s)" "$dir/out" ||
        fail "$name: no clean summary from rank 0"
    echo "--- $name (mpirun exit $rc)"
    grep -E "^(rank|signals)" "$dir/out"
}

run_case usr1-mpirun mpirun USR1 75 SIGUSR1 SIGUSR1
run_case term-rank rank1 TERM 75 none SIGTERM
run_case term-mpirun mpirun TERM 1 SIGTERM SIGTERM
if ((fails)); then
    echo "signals mpirun: $fails failure(s)"
    exit 1
fi
echo "signals mpirun: 3 cases, 0 failure(s)"

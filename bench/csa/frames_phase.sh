#!/usr/bin/env bash
# bench/csa/frames_phase.sh STORYRUN [FRAMES]: speedup of the bank-mode frames phase on 2
# ranks over 1 (the phase needs no communication: frames are split in rounds). Renders a
# story with one character (2 id frames) and FRAMES more frames on builtin:tiny-sdxl, one
# OpenMP thread per rank, and times the frames phase from rank 0's log (from the end of the
# id pass to the last frame). Prints the median of 3 runs per rank count and the ratio.
set -euo pipefail
STORYRUN=${1:?usage: frames_phase.sh STORYRUN [FRAMES]}
N=${2:-12}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
{
    printf 'model: builtin:tiny-sdxl\nseed: 5\nsteps: 6\nguidance: 5.0\nsize: 64x64\n'
    printf 'characters:\n  - name: Bob\n    description: a man in a black suit\n    id_frames: 2\n'
    printf 'comic: {layout: none}\nframes:\n  - "[Bob] id one"\n  - "[Bob] id two"\n'
    for i in $(seq 1 "$N"); do printf '  - "[Bob] scene %d"\n' "$i"; done
} >"$T/story.yaml"
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
phase() {  # phase NP: seconds of the frames phase
    rm -rf "$T/o"
    mpirun -n "$1" "$STORYRUN" render "$T/story.yaml" --output "$T/o" >"$T/log" 2>&1
    python3 - "$T/log" <<'PY'
import re, sys
t = [(float(m.group(1)), l) for l in open(sys.argv[1]) for m in [re.match(r"storyrun \[([0-9.]+)s\]", l)] if m]
start = next(s for s, l in t if "frames 2/" in l)
end = next(s for s, l in t if "render: done:" in l)
print(f"{end - start:.3f}")
PY
}
med() { sort -n | sed -n 2p; }
one=$(for r in 1 2 3; do phase 1; done | med)
two=$(for r in 1 2 3; do phase 2; done | med)
printf 'frames phase (%d frames, 1 thread per rank): 1 rank %.2f s, 2 ranks %.2f s, speedup %.2fx\n' \
    "$N" "$one" "$two" "$(python3 -c "print($one / $two)")"

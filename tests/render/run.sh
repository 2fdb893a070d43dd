#!/usr/bin/env bash
# tests/render/run.sh STORYRUN MPIEXEC MODE: end-to-end tests of `storyrun render`.
# Every mode renders into its own folder under $PWD and compares files byte for byte.
set -u
STORYRUN=$1
MPIEXEC=$2
MODE=$3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STORY=$HERE/story.yaml
OUT=$PWD/render_$MODE
rm -rf "$OUT"
mkdir -p "$OUT"
export OMP_NUM_THREADS=1   # same thread count per rank in every run
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

render() {  # render NP DIR [args...]: exit code in $RC, output in DIR.log
    local np=$1 dir=$2
    shift 2
    "$MPIEXEC" -n "$np" "$STORYRUN" render "$STORY" --output "$dir" "$@" >"$dir.log" 2>&1
    RC=$?
}
# Pixels of two PNGs identical: their IDAT streams (same encoder, same settings) are equal;
# the text chunks (config hash, settings) may differ.
same_pixels() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
def idat(path):
    d = open(path, "rb").read()
    assert d[:8] == b"\x89PNG\r\n\x1a\n", path
    i, out = 8, b""
    while i < len(d):
        n, = struct.unpack(">I", d[i:i + 4])
        if d[i + 4:i + 8] in (b"IHDR", b"IDAT"):
            out += d[i + 8:i + 8 + n]
        i += 12 + n
    return out
sys.exit(0 if idat(sys.argv[1]) == idat(sys.argv[2]) else 1)
PY
}
same_frames() {  # same_frames DIR_A DIR_B [frame numbers...]: identical pixels
    local a=$1 b=$2
    shift 2
    local frames=("$@")
    if [ ${#frames[@]} -eq 0 ]; then
        mapfile -t frames < <(cd "$a/frames" && ls)
    else
        frames=("${frames[@]/#/frame_00}")
        frames=("${frames[@]/%/.png}")
    fi
    [ ${#frames[@]} -gt 0 ] || { fail "no frames in $a"; return 1; }
    local bad=0
    for f in "${frames[@]}"; do
        same_pixels "$a/frames/$f" "$b/frames/$f" || { echo "  $f differs between $a and $b"; bad=1; }
    done
    return $bad
}
need_rc() {  # need_rc EXPECTED WHAT LOG
    if [ "$RC" -ne "$1" ]; then
        fail "$2: exit code $RC, expected $1"
        tail -20 "$3"
        return 1
    fi
}

case $MODE in
ranks)  # (b): 1, 2 and 3 ranks give byte-identical frames
    for np in 1 2 3; do
        render $np "$OUT/np$np"
        need_rc 0 "render on $np ranks" "$OUT/np$np.log" || continue
        [ "$(ls "$OUT/np$np/frames" | wc -l)" -eq 7 ] || fail "np$np: $(ls "$OUT/np$np/frames" | wc -l) frames, expected 7"
    done
    for f in "$OUT"/np1/frames/*.png; do  # the same config: the whole files are identical
        cmp -s "$f" "$OUT/np2/frames/$(basename "$f")" || fail "$(basename "$f"): files differ"
    done
    same_frames "$OUT/np1" "$OUT/np2" && ok "1 and 2 ranks: identical frames" || fail "1 vs 2 ranks"
    same_frames "$OUT/np1" "$OUT/np3" && ok "1 and 3 ranks: identical frames" || fail "1 vs 3 ranks"
    for f in index.html pages/page_01.png pages/page_02.png; do
        [ -s "$OUT/np2/$f" ] && ok "$f written" || fail "$f missing"
    done
    # CSA changes the frames that read a bank (a control: the test can fail)
    render 1 "$OUT/off" --set csa.mode=off
    need_rc 0 "render with CSA off" "$OUT/off.log"
    same_frames "$OUT/np1" "$OUT/off" 6 >/dev/null && fail "frame 6 is the same with CSA off" || ok "CSA changes frame 6"
    python3 - "$OUT/np2" <<'PY' || fail "manifest"
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
kinds = {}
for e in m["outputs"]:
    p = os.path.join(d, e["path"])
    assert hashlib.sha256(open(p, "rb").read()).hexdigest() == e["sha256"], p
    kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
assert kinds.get("frame") == 7 and kinds.get("bank") == 2 and kinds.get("index") == 1, kinds
print("ok: manifest lists", kinds, "with matching checksums")
PY
    ;;
resume)  # stopped by a signal after 3 frames, re-run: identical outputs, no frame twice
    render 1 "$OUT/full"
    need_rc 0 "uninterrupted render" "$OUT/full.log"
    STORY_RENDER_STOP_AFTER=3 render 2 "$OUT/cut"
    need_rc 75 "render stopped by SIGUSR1" "$OUT/cut.log" && ok "stopped with exit code 75"
    n1=$(ls "$OUT/cut/frames" | wc -l)
    [ "$n1" -ge 3 ] && [ "$n1" -lt 7 ] && ok "$n1 frames after the stop" || fail "$n1 frames after the stop"
    render 2 "$OUT/cut"
    need_rc 0 "resumed render" "$OUT/cut.log"
    grep -q "($n1 done before)" "$OUT/cut.log" && ok "the re-run found $n1 frames done" || fail "re-run did not report $n1 frames done"
    grep -q "$((7 - n1)) frames rendered by this run" "$OUT/cut.log" && ok "the re-run rendered only the other $((7 - n1))" || { fail "the re-run rendered frames again"; grep "rendered by" "$OUT/cut.log"; }
    same_frames "$OUT/full" "$OUT/cut" && ok "resumed frames identical to uninterrupted" || fail "resumed frames differ"
    ;;
bank_reuse)  # (d): a bank written by one job and read by another gives the same frames
    render 2 "$OUT/a"
    need_rc 0 "first story" "$OUT/a.log"
    render 2 "$OUT/b" --set "characters.0.bank=$OUT/a/banks/Bob.h5" --set characters.0.id_frames=0 \
        --set "characters.1.bank=$OUT/a/banks/Alice.h5" --set characters.1.id_frames=0
    need_rc 0 "second story with stored banks" "$OUT/b.log"
    grep -q "bank loaded from $OUT/a/banks/Bob.h5" "$OUT/b.log" && ok "Bob's bank loaded" || fail "Bob's bank not loaded"
    # frames 5, 6 read the banks in both stories (0, 1, 2, 4 were id frames in the first)
    same_frames "$OUT/a" "$OUT/b" 5 6 && ok "frames reading a stored bank identical" || fail "stored bank frames differ"
    render 1 "$OUT/c" --set "characters.0.bank=$OUT/a/banks/Bob.h5" --set characters.0.id_frames=0 --set steps=3
    [ "$RC" -eq 2 ] && grep -q "was made with steps 4, this story uses 3" "$OUT/c.log" && ok "a bank made with other steps is refused" || { fail "mismatched bank not refused (rc $RC)"; tail -5 "$OUT/c.log"; }
    ;;
sa0)  # (e): sampling rate 0 in bank mode is plain self-attention
    render 2 "$OUT/zero" --set csa.sa32=0 --set csa.sa64=0 --set csa.sa_other=0
    need_rc 0 "sa = 0" "$OUT/zero.log"
    render 1 "$OUT/plain" --set csa.mode=off
    need_rc 0 "CSA off" "$OUT/plain.log"
    same_frames "$OUT/zero" "$OUT/plain" && ok "sa = 0 equals plain self-attention" || fail "sa = 0 differs from plain"
    ;;
window)  # window mode: 1 and 2 ranks identical; working memory independent of story length
    render 1 "$OUT/np1" --set csa.mode=window --set csa.window=3
    need_rc 0 "window mode, 1 rank" "$OUT/np1.log"
    render 2 "$OUT/np2" --set csa.mode=window --set csa.window=3
    need_rc 0 "window mode, 2 ranks" "$OUT/np2.log"
    same_frames "$OUT/np1" "$OUT/np2" && ok "window mode: 1 and 2 ranks identical" || fail "window mode ranks differ"
    render 1 "$OUT/off" --set csa.mode=off
    same_frames "$OUT/np1" "$OUT/off" 3 >/dev/null && fail "window mode frame 3 equals plain" || ok "window mode changes the frames"
    ;;
window_memory)  # (c): working memory of window mode does not grow with the story
    mk() {  # mk N FILE: an N-frame window-mode story
        {
            printf 'model: builtin:tiny-sdxl\nseed: 3\nsteps: 2\nguidance: 5.0\nsize: 64x64\n'
            printf 'characters:\n  - "[Bob]: a man in a black suit"\n'
            printf 'csa: {mode: window, window: 3}\ncomic: {layout: none}\nframes:\n'
            for i in $(seq 1 "$1"); do printf '  - "[Bob] scene %d"\n' "$i"; done
        } >"$2"
    }
    mk 16 "$OUT/s16.yaml"
    mk 48 "$OUT/s48.yaml"
    for n in 16 48; do
        "$MPIEXEC" -n 1 "$STORYRUN" render "$OUT/s$n.yaml" --output "$OUT/o$n" >"$OUT/o$n.log" 2>&1 || fail "$n-frame story: exit $?"
    done
    # activations: one frame's UNet call plus its window partners' tokens (set by W);
    # per-frame state: each frame's latents and text conditioning (linear in frames, and
    # ~1000x smaller than the activations at real sizes: ~2 MiB per SDXL 1024 frame)
    m16=$(sed -n 's/.*activations \([0-9.]*\) MiB.*/\1/p' "$OUT/o16.log")
    m48=$(sed -n 's/.*activations \([0-9.]*\) MiB.*/\1/p' "$OUT/o48.log")
    s16=$(sed -n 's/.*latents and conditioning \([0-9.]*\) MiB.*/\1/p' "$OUT/o16.log")
    s48=$(sed -n 's/.*latents and conditioning \([0-9.]*\) MiB.*/\1/p' "$OUT/o48.log")
    echo "activations: 16 frames $m16 MiB, 48 frames $m48 MiB; latents + conditioning: $s16, $s48 MiB"
    python3 -c "import sys; a, b = float('$m16'), float('$m48'); sys.exit(0 if abs(b - a) < 0.10 * a else 1)" &&
        ok "16 and 48 frames: peak activation memory within 10%" || fail "activation memory grows with the story ($m16 vs $m48 MiB)"
    python3 -c "import sys; a, b = float('$s16'), float('$s48'); sys.exit(0 if b < 3.3 * a else 1)" &&
        ok "per-frame state grows at most linearly" || fail "per-frame state grows faster than the story ($s16 vs $s48 MiB)"
    [ "$(ls "$OUT/o48/frames" | wc -l)" -eq 48 ] && ok "48 frames written" || fail "48-frame story incomplete"
    ;;
slurm)  # the demo story submitted with sbatch (2 tasks, srun --mpi=pmix) to a real local
    # Slurm cluster; its frames equal a plain 1-rank run's
    command -v slurmctld >/dev/null || { echo "skipped: Slurm is not installed"; exit 77; }
    render 1 "$OUT/local" --set output="$OUT/local"
    need_rc 0 "local render" "$OUT/local.log"
    (cd "$OUT" && STORYRUN=$STORYRUN STORY_SLURM_JOB_TIMEOUT=120 bash "$HERE/../slurm/run_sbatch.sh" \
        "$HERE/../../slurm/render-cpu.sbatch" --ntasks-per-node=2 --cpus-per-task=1 --time=10 \
        -- "$STORY" --output "$OUT/sbatch") >"$OUT/sbatch.log" 2>&1
    RC=$?
    need_rc 0 "sbatch of the story" "$OUT/sbatch.log" && ok "the sbatch job completed"
    same_frames "$OUT/local" "$OUT/sbatch" && ok "Slurm job frames identical to a local run" || fail "Slurm frames differ"
    [ -s "$OUT/sbatch/index.html" ] && ok "index.html from the Slurm job" || fail "no index.html from the Slurm job"
    ;;
broken)  # the broken-config table through `storyrun check`: exit 2 and the expected message
    CASES=$HERE/../config/broken/cases.tsv
    n=0
    while IFS=$'\t' read -r file pos problems msg; do
        case $file in '#'* | '') continue ;; esac
        n=$((n + 1))
        out=$(cd "$HERE/../config" && "$STORYRUN" check "broken/$file" 2>&1)
        rc=$?
        where="broken/$file"
        [ "$pos" != "-" ] && where="broken/$file:$pos"
        if [ $rc -ne 2 ]; then
            fail "$file: exit code $rc, expected 2"
        elif ! grep -qF -- "$msg" <<<"$out" || ! grep -qF -- "$where" <<<"$out"; then
            fail "$file: expected '$where' and '$msg' in: $out"
        fi
    done <"$CASES"
    [ $n -ge 15 ] && ok "$n broken configs refused by storyrun check with exit code 2 and their message" || fail "only $n cases"
    ;;
nodamage)  # a failed run leaves the outputs of a good run as they were
    render 2 "$OUT/good"
    need_rc 0 "good render" "$OUT/good.log"
    before=$(cd "$OUT/good" && find . -type f ! -path './logs/*' -exec sha256sum {} + | sort)
    render 1 "$OUT/good" --set seed=12   # another config into the same folder
    [ "$RC" -eq 2 ] && grep -q "holds the outputs of another config" "$OUT/good.log" && ok "another config's run refused" || fail "another config's run not refused (rc $RC)"
    render 1 "$OUT/good" --restart --set precision=bf16   # found only once the model is loaded
    [ "$RC" -eq 2 ] && grep -q "precision bf16 is not available on the CPU" "$OUT/good.log" && ok "a precision the device lacks refused, even with --restart" || fail "bad precision not refused (rc $RC)"
    render 1 "$OUT/good" --set "characters.0.bank=$OUT/missing.h5" --set characters.0.id_frames=0
    [ "$RC" -eq 2 ] && ok "a missing bank file refused" || fail "missing bank not refused (rc $RC)"
    after=$(cd "$OUT/good" && find . -type f ! -path './logs/*' -exec sha256sum {} + | sort)
    [ "$before" = "$after" ] && ok "outputs unchanged by the failed runs" || { fail "outputs changed"; diff <(echo "$before") <(echo "$after"); }
    leftovers=$(find "$OUT/good" -name '*.tmp*' | wc -l)
    [ "$leftovers" -eq 0 ] && ok "no temporary files left" || fail "$leftovers temporary files left"
    "$STORYRUN" render "$STORY" --output "$OUT/good" --restart >"$OUT/restart.log" 2>&1 && ok "the same config again: nothing to do" || fail "re-run of a finished story failed"
    grep -q "0 frames rendered by this run" "$OUT/restart.log" && ok "a finished story renders nothing" || fail "a finished story was rendered again"
    ;;
*)
    echo "unknown mode $MODE"
    exit 2
    ;;
esac
if [ $FAILS -gt 0 ]; then
    echo "$FAILS check(s) failed (outputs in $OUT)"
    exit 1
fi
echo "all checks passed"

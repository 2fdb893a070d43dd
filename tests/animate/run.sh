#!/bin/bash
# tests/animate/run.sh STORYRUN MPIEXEC TEST_ANIMATE TEST_PREDICT SRCDIR MODE
# The demo flow's last stage: render (tests/animate/story.yaml, 3 frames of 32x32 on
# builtin:tiny-sdxl) -> predict (the tiny CLIP encoder of configs/predict-demo.yaml, a seeded
# predictor of L = 4 frames) -> animate (configs/animate-demo.yaml on builtin:tiny-animate,
# 4 frames per transition, 2 steps) -> 2 transition MP4s and story.mp4.
#   setup   render, predict, and the reference animate run on 1 rank (work/ref)
#   ranks   animate on 2 ranks: every frame, MP4 and the manifest byte-identical to 1 rank
#   resume  SIGUSR1 after the first pair: exit 75, one pair recorded; a re-run finishes with
#           the same bytes as an uninterrupted run
#   demo    configs/demo.yaml itself: render -> predict -> animate on 2 ranks, animate again
#           on 1 rank: 7 transitions + story.mp4, byte-identical
#   bad     mismatched / corrupt transitions stores and changed story frames: exit 2, a
#           message naming the problem, no output folder
set -u
STORYRUN=$1 MPIEXEC=$2 TA=$3 TP=$4 SRC=$5 MODE=$6
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
W=$PWD/work
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
cd "$SRC" || exit 1
ANIM=(--set story=$W/story --set frames=4 --set steps=2 --set video.hold=2)

# animate OUT [extra args...] on 1 rank (plain) or NP ranks (NP set)
animate() {
    local out=$1
    shift
    if [ -n "${NP:-}" ]; then
        "$MPIEXEC" -np "$NP" "$STORYRUN" animate configs/animate-demo.yaml "${ANIM[@]}" \
            --set output=$out "$@"
    else
        "$STORYRUN" animate configs/animate-demo.yaml "${ANIM[@]}" --set output=$out "$@"
    fi
}

# every output of $1 byte-identical in $2 (logs aside)
same_outputs() {
    local a=$1 b=$2 n=0
    for f in $(cd "$a" && find . -type f ! -path './logs/*' | sort); do
        n=$((n + 1))
        cmp -s "$a/$f" "$b/$f" || { fail "$f differs between $a and $b"; return; }
    done
    [ "$(cd "$a" && find . -type f ! -path './logs/*' | wc -l)" = \
      "$(cd "$b" && find . -type f ! -path './logs/*' | wc -l)" ] || { fail "file counts differ"; return; }
    ok "$n files identical ($a vs $b)"
}

case $MODE in
setup)
    rm -rf "$W" && mkdir -p "$W"
    "$STORYRUN" render tests/animate/story.yaml --output "$W/story" --set size=32x32 \
        > "$W/render.log" 2>&1 || fail "render: $(tail -3 "$W/render.log")"
    "$TP" ckpt "$W/pred.safetensors" 7 16 4 > /dev/null || fail "predictor checkpoint"
    "$STORYRUN" predict configs/predict-demo.yaml --set story=$W/story \
        --set predictor=$W/pred.safetensors --set output.store=$W/story/transitions.h5 \
        > "$W/predict.log" 2>&1 || fail "predict: $(tail -3 "$W/predict.log")"
    animate "$W/ref" > "$W/ref.log" 2>&1 || fail "animate: $(tail -5 "$W/ref.log")"
    for p in 0 1; do
        n=$(ls "$W/ref/transitions/pair_00$p"/frame_*.png 2>/dev/null | wc -l)
        [ "$n" = 4 ] && ok "pair $p: 4 frames" || fail "pair $p: $n frames, expected 4"
        "$TA" count "$W/ref/transitions/pair_00$p.mp4" 4 32 32 || fail "pair $p video"
    done
    # story.mp4: 3 story frames held 2 frames each + 2 inner frames of each of 2 transitions
    "$TA" count "$W/ref/story.mp4" 10 32 32 || fail "story video"
    grep -q '"path": "story.mp4"' "$W/ref/manifest.json" || fail "story.mp4 not in the manifest"
    "$STORYRUN" store verify "$W/story/transitions.h5" > /dev/null 2>&1 || true
    # a re-run finds everything done and changes nothing
    cp "$W/ref/manifest.json" "$W/manifest.before"
    animate "$W/ref" > "$W/ref2.log" 2>&1 || fail "second run: $(tail -3 "$W/ref2.log")"
    grep -q "2 done before" "$W/ref/logs/rank0.log" && ok "re-run skips the done pairs" ||
        fail "re-run did not skip the pairs"
    cmp -s "$W/manifest.before" "$W/ref/manifest.json" || fail "re-run changed the manifest"
    ;;
demo)  # the demo story (configs/demo.yaml, 8 frames of 64x64) end to end on 2 ranks:
    # render -> predict -> animate -> story.mp4; animate again on 1 rank: identical bytes
    D=$(mkdir -p "$W/../demo_work" && cd "$W/../demo_work" && pwd)
    rm -rf "$D" && mkdir -p "$D"
    export OMP_NUM_THREADS=1
    "$MPIEXEC" -np 2 "$STORYRUN" render configs/demo.yaml --output "$D/demo" >"$D/render.log" 2>&1 ||
        fail "render: $(tail -3 "$D/render.log")"
    "$TP" ckpt "$D/pred.safetensors" 7 16 4 >/dev/null || fail "predictor checkpoint"
    "$MPIEXEC" -np 2 "$STORYRUN" predict configs/predict-demo.yaml --set story=$D/demo \
        --set predictor=$D/pred.safetensors --set output.store=$D/demo/transitions.h5 \
        >"$D/predict.log" 2>&1 || fail "predict: $(tail -3 "$D/predict.log")"
    DEMO=(--set story=$D/demo --set frames=4 --set steps=2)
    "$MPIEXEC" -np 2 "$STORYRUN" animate configs/animate-demo.yaml "${DEMO[@]}" \
        --set output=$D/np2 >"$D/np2.log" 2>&1 || fail "animate on 2 ranks: $(tail -5 "$D/np2.log")"
    "$MPIEXEC" -np 1 "$STORYRUN" animate configs/animate-demo.yaml "${DEMO[@]}" \
        --set output=$D/np1 >"$D/np1.log" 2>&1 || fail "animate on 1 rank: $(tail -5 "$D/np1.log")"
    n=$(ls "$D/np2/transitions/"*.mp4 2>/dev/null | wc -l)
    [ "$n" = 7 ] && ok "7 transition videos for the 8-frame demo story" || fail "$n transition videos, expected 7"
    [ -s "$D/np2/story.mp4" ] && ok "story.mp4 written" || fail "no story.mp4"
    same_outputs "$D/np1" "$D/np2"
    ;;
ranks)
    rm -rf "$W/np2" "$W/np1"
    NP=2 animate "$W/np2" > "$W/np2.log" 2>&1 || fail "2 ranks: $(tail -5 "$W/np2.log")"
    same_outputs "$W/ref" "$W/np2"
    NP=1 animate "$W/np1" > "$W/np1.log" 2>&1 || fail "mpirun -np 1: $(tail -5 "$W/np1.log")"
    same_outputs "$W/ref" "$W/np1"
    ;;
resume)
    rm -rf "$W/res"
    STORY_ANIMATE_STOP_AFTER=1 animate "$W/res" > "$W/res1.log" 2>&1
    rc=$?
    [ $rc = 75 ] && ok "stopped with 75" || fail "stop: exit $rc, expected 75"
    grep -q 'pair_000.mp4' "$W/res/manifest.json" && ! grep -q 'pair_001.mp4' "$W/res/manifest.json" &&
        ! [ -e "$W/res/story.mp4" ] && ok "one pair recorded, no story video yet" ||
        fail "after the stop the manifest should list pair 0 only"
    animate "$W/res" > "$W/res2.log" 2>&1 || fail "resume: $(tail -3 "$W/res2.log")"
    grep -q "1 done before" "$W/res/logs/rank0.log" || fail "resume did not skip pair 0"
    same_outputs "$W/ref" "$W/res"
    ;;
bad)
    # expect_bad NAME PATTERN ARGS...: exit 2, PATTERN in stderr, no output folder
    expect_bad() {
        local name=$1 pat=$2
        shift 2
        rm -rf "$W/bad"
        animate "$W/bad" "$@" > "$W/bad.log" 2>&1
        local rc=$?
        if [ $rc != 2 ]; then
            fail "$name: exit $rc, expected 2"
        elif ! grep -q -- "$pat" "$W/bad.log"; then
            fail "$name: no '$pat' in: $(cat "$W/bad.log")"
        elif [ -e "$W/bad" ]; then
            fail "$name: the output folder was created"
        else
            ok "$name: $(grep -m1 -- "$pat" "$W/bad.log" | cut -c1-160)"
        fi
    }
    expect_bad "frames vs L" "have L = 4 frames" --set frames=5
    head -c 3000 "$W/story/transitions.h5" > "$W/corrupt.h5"
    expect_bad "truncated store" "corrupt.h5" --set transitions=$W/corrupt.h5
    echo "not hdf5" > "$W/text.h5"
    expect_bad "not a store" "text.h5" --set transitions=$W/text.h5
    expect_bad "missing store" "nothing.h5" --set transitions=$W/nothing.h5
    # the same frames under another folder: the store is another story's
    rm -rf "$W/story2" && cp -r "$W/story" "$W/story2"
    expect_bad "another story's store" "not from" --set story=$W/story2 \
        --set transitions=$W/story/transitions.h5
    # a story frame changed after render (and after predict)
    printf 'x' >> "$W/story2/frames/frame_001.png"
    "$STORYRUN" predict configs/predict-demo.yaml --set story=$W/story2 \
        --set predictor=$W/pred.safetensors --set output.store=$W/story2/t.h5 > /dev/null 2>&1
    expect_bad "damaged story frame" "frame_001.png" --set story=$W/story2 \
        --set transitions=$W/story/transitions.h5
    expect_bad "bad key" "did you mean" --set framez=4
    # the outputs of another config are kept unless --restart
    rm -rf "$W/other" && cp -r "$W/ref" "$W/other"
    cp "$W/other/manifest.json" "$W/other.before"
    animate "$W/other" --set seed=99 > "$W/other.log" 2>&1
    rc=$?
    [ $rc = 2 ] && grep -q "another config" "$W/other.log" && cmp -s "$W/other.before" "$W/other/manifest.json" &&
        ok "another config's outputs refused and kept" || fail "another config: exit $rc"
    ;;
*)
    echo "unknown mode $MODE"
    exit 2
    ;;
esac
if [ $fails = 0 ]; then echo "all checks passed"; else echo "FAIL: $fails checks failed"; fi
[ $fails = 0 ]

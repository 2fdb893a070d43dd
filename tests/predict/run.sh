#!/usr/bin/env bash
# tests/predict/run.sh STORYRUN MPIEXEC TEST_PREDICT SRC MODE: `storyrun predict` end to end.
#   setup   renders tests/render/story.yaml (7 frames, builtin:tiny-sdxl, 64x64) into
#           predict_work/story and writes seeded predictor checkpoints (D 16 and D 8, L 8)
#   ranks   configs/predict-demo.yaml on 1 and 2 ranks: 6 pairs; the 1-rank store equals a
#           direct computation bitwise (test_predict check); h5py reads it; the 2-rank store
#           equals the 1-rank one; `storyrun store info` lists it
#   pairs   a TSV of 3 image pairs on 2 ranks, checked the same way
#   bad     missing checkpoint, D mismatch, a missing frame file, a frame changed since
#           render: exit 2, a message naming the file, no store, no STORE.partial, no logs;
#           an existing store under the output name is left as it was
#   badcfg  the same for no manifest, a missing image in a pairs file, both inputs, a typo
#   reader  damaged and mismatched stores refused by the reader (test_predict reader) and by
#           `storyrun store verify`; the default store path of a story
set -u
STORYRUN=$1
MPIEXEC=$2
TP=$3
SRC=$4
MODE=$5
W=$PWD/predict_work
ENC=$SRC/tests/clip_vision/data/tiny_quick
CONFIG=$SRC/configs/predict-demo.yaml
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
CHECK="$PY $SRC/tests/predict/check_transitions.py"
export OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

predict() {  # predict NP LOG [--set ...]: exit code in $RC, output in LOG; NP 0: no mpiexec
    local np=$1 log=$2 launch=("$MPIEXEC" -n "$1")
    shift 2
    [ "$np" -eq 0 ] && launch=()
    "${launch[@]}" "$STORYRUN" predict "$CONFIG" --set "story=$W/story" \
        --set "encoder=$ENC" --set "predictor=$W/smp.safetensors" "$@" >"$log" 2>&1
    RC=$?
}
expect_log() {  # expect_log LOG REGEX WHAT
    if grep -Eq -- "$2" "$1"; then ok "$3"; else fail "$3: no /$2/ in $1:"; sed 's/^/  | /' "$1"; fi
}

case $MODE in
setup)
    rm -rf "$W"
    mkdir -p "$W"
    if "$STORYRUN" render "$SRC/tests/render/story.yaml" --output "$W/story" >"$W/render.log" 2>&1 &&
        [ -f "$W/story/frames/frame_006.png" ]; then ok "rendered 7 frames"; else
        fail "render"; cat "$W/render.log"; fi
    "$TP" ckpt "$W/smp.safetensors" 7 16 8 || fail "checkpoint D 16"
    "$TP" ckpt "$W/smp_d8.safetensors" 7 8 8 || fail "checkpoint D 8"
    ;;
ranks)
    rm -rf "$W"/np1.h5* "$W"/np2.h5*
    predict 1 "$W/np1.log" --set "output.store=$W/np1.h5"
    [ $RC -eq 0 ] || fail "np1 exit $RC"
    expect_log "$W/np1.log" "wrote $W/np1.h5: 6 pair\(s\), 8 x 16 embeddings each, on 1 rank" "np1: 6 pairs"
    predict 2 "$W/np2.log" --set "output.store=$W/np2.h5"
    [ $RC -eq 0 ] || fail "np2 exit $RC"
    expect_log "$W/np2.log" "wrote $W/np2.h5: 6 pair\(s\), 8 x 16 embeddings each, on 2 rank" "np2: 6 pairs"
    [ -d "$W/np2.h5.logs" ] && [ -f "$W/np2.h5.logs/rank1.log" ] && ok "per-rank logs" || fail "no rank1.log"
    grep -q "pair 5:" "$W/np2.h5.logs/rank1.log" && ! grep -q "pair 5:" "$W/np2.h5.logs/rank0.log" &&
        ok "pairs 3..5 on rank 1" || fail "rank 1 did not do pair 5 alone"
    [ ! -e "$W/np1.h5.partial" ] && [ ! -e "$W/np2.h5.partial" ] && ok "no .partial left" ||
        fail ".partial left behind"
    "$TP" check "$W/np1.h5" "$ENC" "$W/smp.safetensors" story "$W/story" >"$W/check.log" 2>&1
    expect_log "$W/check.log" "predict check: [0-9]+ checks, 0 failure" "np1 equals a direct computation bitwise"
    $CHECK expect "$W/np1.h5" pairs=6 L=8 D=16 source=story "predictor=$W/smp.safetensors" >"$W/py1.log" 2>&1
    expect_log "$W/py1.log" "check_transitions: ok" "h5py reads np1.h5"
    $CHECK same "$W/np1.h5" "$W/np2.h5" >"$W/same.log" 2>&1
    expect_log "$W/same.log" "check_transitions: ok" "1 and 2 ranks give identical stores"
    "$STORYRUN" store info "$W/np1.h5" >"$W/info.log" 2>&1 || fail "store info exit $?"
    expect_log "$W/info.log" "kind +transitions" "store info: kind"
    expect_log "$W/info.log" "pairs +\[6, 8, 16\] +f32" "store info: pairs dataset"
    "$STORYRUN" store verify "$W/np1.h5" >"$W/verify.log" 2>&1 || fail "store verify exit $?"
    expect_log "$W/verify.log" "np1.h5: ok: transitions store, 6 pairs of 8 x 16, all checked" "store verify"
    # Run again onto the same store: replaced by an equal one.
    predict 2 "$W/again.log" --set "output.store=$W/np2.h5"
    $CHECK same "$W/np1.h5" "$W/np2.h5" >"$W/same2.log" 2>&1
    [ $RC -eq 0 ] && expect_log "$W/same2.log" "check_transitions: ok" "a re-run replaces the store"
    ;;
pairs)
    rm -rf "$W/pairs.h5"* "$W/pairs.tsv"
    printf '# start\tend\tprompt\nstory/frames/frame_000.png\tstory/frames/frame_003.png\tBob meets the rain\nstory/frames/frame_005.png\t%s\n\nstory/frames/frame_006.png\tstory/frames/frame_001.png\tback to coffee\n' \
        "$W/story/frames/frame_002.png" >"$W/pairs.tsv"
    predict 2 "$W/pairs.log" --set story= --set "pairs=$W/pairs.tsv" --set "output.store=$W/pairs.h5"
    # (story= is an empty value: read as absent)
    [ $RC -eq 0 ] || fail "pairs exit $RC"
    expect_log "$W/pairs.log" "wrote $W/pairs.h5: 3 pair\(s\)" "3 pairs from a TSV"
    "$TP" check "$W/pairs.h5" "$ENC" "$W/smp.safetensors" pairs "$W/pairs.tsv" >"$W/checkp.log" 2>&1
    expect_log "$W/checkp.log" "predict check: [0-9]+ checks, 0 failure" "pairs store equals a direct computation"
    $CHECK expect "$W/pairs.h5" pairs=3 L=8 D=16 source=pairs "predictor=$W/smp.safetensors" >"$W/pyp.log" 2>&1
    expect_log "$W/pyp.log" "check_transitions: ok" "h5py reads pairs.h5"
    ;;
bad | badcfg)
    B=$W/$MODE
    rm -rf "$B"
    mkdir -p "$B"
    bad_case() {  # bad_case NAME NP REGEX [--set ...]
        local name=$1 np=$2 regex=$3
        shift 3
        predict "$np" "$B/$name.log" --set "output.store=$B/$name.h5" "$@"
        [ $RC -eq 2 ] && ok "$name: exit 2" || fail "$name: exit $RC, expected 2"
        expect_log "$B/$name.log" "$regex" "$name: message"
        if [ -e "$B/$name.h5" ] || [ -e "$B/$name.h5.partial" ] || [ -e "$B/$name.h5.logs" ]; then
            fail "$name: left files behind: $(ls "$B" | grep "^$name.h5")"
        else ok "$name: nothing left behind"; fi
    }
    # (NP 0: a singleton run; mpiexec's start and abort take seconds)
    if [ "$MODE" = badcfg ]; then
        mkdir -p "$B/empty"
        printf 'a.png\t%s\n' "$W/story/frames/frame_000.png" >"$B/pairs.tsv"
        bad_case no_manifest 0 "$B/empty/manifest.json: not found; expected the output folder of storyrun render" \
            --set "story=$B/empty"
        bad_case pairs_missing 2 "pairs.tsv:1: start image $B/a.png: No such file" --set story= --set "pairs=$B/pairs.tsv"
        bad_case both 0 "give story .* or pairs .*, not both" --set "pairs=$B/pairs.tsv"
        bad_case typo 0 "unknown key 'predicter'" --set "predicter=x"
        echo "all checks passed" && exit 0
    fi
    cp -r "$W/story" "$B/story_missing"
    rm "$B/story_missing/frames/frame_003.png"
    cp -r "$W/story" "$B/story_changed"
    cp "$W/story/frames/frame_001.png" "$B/story_changed/frames/frame_004.png"
    bad_case no_ckpt 2 "$B/nope.safetensors: cannot read" --set "predictor=$B/nope.safetensors"
    bad_case d_mismatch 0 "smp_d8.safetensors: the motion predictor works on 8-wide embeddings .*encoder $ENC gives 16-wide image embeddings" \
        --set "predictor=$W/smp_d8.safetensors"
    bad_case missing_frame 2 "story_missing/frames/frame_003.png.*frame 3 of the story" --set "story=$B/story_missing"
    bad_case changed_frame 0 "story_changed/frames/frame_004.png: [0-9]+ bytes, but .*manifest.json lists [0-9]+ .frame 4 of the story" \
        --set "story=$B/story_changed"
    # A bad run aimed at an existing store leaves it as it was.
    cp "$W/np1.h5" "$B/keep.h5"
    predict 0 "$B/keep.log" --set "output.store=$B/keep.h5" --set "predictor=$W/smp_d8.safetensors"
    [ $RC -eq 2 ] && cmp -s "$W/np1.h5" "$B/keep.h5" && [ ! -e "$B/keep.h5.logs" ] &&
        ok "existing store untouched by a refused run" || fail "existing store changed (exit $RC)"
    ;;
reader)
    rm -rf "$W/reader"
    mkdir -p "$W/reader"
    "$TP" reader "$W/np1.h5" "$W/reader" >"$W/reader.log" 2>&1
    expect_log "$W/reader.log" "predict reader: [0-9]+ checks, 0 failure" "reader refusals"
    "$STORYRUN" store verify "$W/reader/nan.h5" >"$W/verify_nan.log" 2>&1
    [ $? -eq 1 ] || fail "store verify on nan.h5: exit not 1"
    expect_log "$W/verify_nan.log" "nan.h5: pair 1: pairs holds a non-finite value" "store verify finds the NaN"
    expect_log "$W/verify_nan.log" "nan.h5: 1 problem.s. in 6 pairs" "store verify counts it"
    # A story's store goes to STORY/transitions.h5 when output.store is not given.
    cp -r "$W/story" "$W/reader/story"
    predict 0 "$W/default.log" --set "story=$W/reader/story" --set output.store=
    [ $RC -eq 0 ] && [ -f "$W/reader/story/transitions.h5" ] && ok "default store STORY/transitions.h5" ||
        fail "default store path (exit $RC)"
    ;;
*)
    echo "unknown mode $MODE"
    exit 2
    ;;
esac
if [ $FAILS -eq 0 ]; then echo "all checks passed"; else echo "$FAILS check(s) failed"; exit 1; fi

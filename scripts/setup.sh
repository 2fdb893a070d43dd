#!/usr/bin/env bash
# scripts/setup.sh: from a fresh Debian 12 machine to a built (and tested) storyrun.
#
#   bash scripts/setup.sh             install missing packages, configure, build
#   bash scripts/setup.sh demo        ... then render the demo story (configs/demo.yaml) on 2
#                                     MPI ranks with the built-in tiny model (no download)
#   bash scripts/setup.sh test [ARGS] ... then run every test (ctest; ARGS go to ctest,
#                                     e.g. -L mpi); the exit code is ctest's
#
# Re-running skips what is done: installed packages are not touched (apt-get runs only
# when one is missing) and an existing build/CMakeCache.txt skips the configure step
# (the build itself is incremental). Delete build/ to configure from scratch.
#
# Environment (all optional):
#   STORY_BUILD_DIR     build folder (default: build/ in the repository)
#   STORY_CMAKE_ARGS    extra configure arguments, e.g. "-DSTORY_CUDA=OFF"
#   STORY_JOBS          parallel compile jobs (default: nproc)
#   STORY_TEST_TIMEOUT  seconds a test may run when it sets no limit itself (default 600)
#   STORY_SKIP_INSTALL  1: never install packages (clusters: see docs/install.md)

# shellcheck disable=SC2317 # functions run through `phase`, which shellcheck cannot see
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${STORY_BUILD_DIR:-$ROOT/build}
JOBS=${STORY_JOBS:-$(nproc 2>/dev/null || echo 2)}
TEST_TIMEOUT=${STORY_TEST_TIMEOUT:-600}

PACKAGES=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev
          hdf5-tools libyaml-dev libopenblas-dev libpng-dev zlib1g-dev libutf8proc-dev
          clang-format libfreetype-dev fonts-dejavu-core libavformat-dev libavcodec-dev
          libswscale-dev libavutil-dev nettle-dev)
# The Slurm tests start a one-node cluster on localhost; recommends would pull in mail
# servers and the like.
# python3-h5py: tests read the HDF5 stores the way users do.
PACKAGES_NO_RECOMMENDS=(slurmctld slurmd slurm-client munge python3-h5py python3-numpy)

# Open MPI refuses to start as root (containers, CI) unless told, and refuses more ranks
# than cores; vader's CMA copy is forbidden in many containers. Harmless elsewhere.
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}

usage() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

now_ms() { date +%s%3N; }
T_START=$(now_ms)

# phase NAME COMMAND...: runs the command, then prints how long it took.
phase() {
    local name=$1
    shift
    local t0
    t0=$(now_ms)
    echo "==> ${name}"
    local rc=0
    "$@" || rc=$?
    local t1
    t1=$(now_ms)
    if [ "$rc" -eq 0 ]; then
        printf '==> %s: done in %d.%01ds\n' "$name" $(((t1 - t0) / 1000)) $((((t1 - t0) % 1000) / 100))
    else
        printf '==> %s: FAILED (exit %d) after %d.%01ds\n' "$name" "$rc" $(((t1 - t0) / 1000)) \
            $((((t1 - t0) % 1000) / 100))
    fi
    return "$rc"
}

missing_packages() {
    local p
    for p in "$@"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != "installed" ]; then
            echo "$p"
        fi
    done
}

install_packages() {
    if [ "${STORY_SKIP_INSTALL:-0}" = "1" ]; then
        echo "STORY_SKIP_INSTALL=1: not checking system packages"
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "not a Debian-based system: install the equivalents of these yourself"
        echo "(docs/install.md lists environment modules and Spack packages):"
        echo "  ${PACKAGES[*]} ${PACKAGES_NO_RECOMMENDS[*]}"
        return 0
    fi
    local missing missing_nr
    missing=$(missing_packages "${PACKAGES[@]}" | tr '\n' ' ')
    missing_nr=$(missing_packages "${PACKAGES_NO_RECOMMENDS[@]}" | tr '\n' ' ')
    if [ -z "${missing// /}" ] && [ -z "${missing_nr// /}" ]; then
        echo "all $((${#PACKAGES[@]} + ${#PACKAGES_NO_RECOMMENDS[@]})) packages already installed"
        return 0
    fi
    echo "missing packages: ${missing}${missing_nr}"
    local sudo=()
    if [ "$(id -u)" != "0" ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo env DEBIAN_FRONTEND=noninteractive)  # sudo resets the environment
        else
            echo "error: installing packages needs root, and sudo is not available. As root, run:" >&2
            echo "  apt-get update" >&2
            [ -n "${missing// /}" ] && echo "  apt-get install -y ${missing}" >&2
            [ -n "${missing_nr// /}" ] &&
                echo "  apt-get install -y --no-install-recommends ${missing_nr}" >&2
            echo "then re-run: bash scripts/setup.sh $*" >&2
            echo "(no root at all? see docs/install.md: environment modules or Spack)" >&2
            return 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    # (errexit does not apply inside a phase, hence the explicit returns)
    "${sudo[@]}" apt-get update || return 1
    # shellcheck disable=SC2086 # word splitting of the package lists is intended
    if [ -n "${missing// /}" ]; then "${sudo[@]}" apt-get install -y $missing || return 1; fi
    # shellcheck disable=SC2086
    if [ -n "${missing_nr// /}" ]; then
        "${sudo[@]}" apt-get install -y --no-install-recommends $missing_nr || return 1
    fi
    local still
    still=$(missing_packages "${PACKAGES[@]}" "${PACKAGES_NO_RECOMMENDS[@]}" | tr '\n' ' ')
    if [ -n "${still// /}" ]; then
        echo "error: still missing after apt-get: $still" >&2
        return 1
    fi
}

configure() {
    if [ -f "$BUILD_DIR/CMakeCache.txt" ]; then
        # A configure that failed half-way leaves a cache but no build files: redo it.
        if [ -f "$BUILD_DIR/Makefile" ] || [ -f "$BUILD_DIR/build.ninja" ]; then
            echo "$BUILD_DIR/CMakeCache.txt exists: skipping (delete $BUILD_DIR to reconfigure)"
            return 0
        fi
        echo "$BUILD_DIR has a CMake cache but no build files: configuring again"
    fi
    # shellcheck disable=SC2086 # STORY_CMAKE_ARGS is a list of arguments
    cmake -S "$ROOT" -B "$BUILD_DIR" -DSTORY_WERROR=ON -DSTORY_CUDA=AUTO ${STORY_CMAKE_ARGS:-}
}

build() {
    cmake --build "$BUILD_DIR" -j "$JOBS"
}

demo() {
    # The main job on its embedded default: what was built and where it runs, then the demo
    # story (configs/demo.yaml: 2 characters, 8 frames, bank mode, a comic page) on the
    # built-in tiny SDXL model (random weights, no download) with 2 MPI ranks. It shows the
    # pipeline, not pictures; README.md says how to render it with real SDXL weights.
    local bin=$BUILD_DIR/storyrun rc=0 step
    for step in "--version" "devices"; do
        echo "+ $bin $step"
        "$bin" "$step" || { rc=$?; echo "storyrun $step failed (exit $rc)" >&2; }
    done
    local mpiexec
    mpiexec=$(command -v mpirun || command -v mpiexec)
    local render=("$mpiexec" -n 2 -x OMP_NUM_THREADS=1 "$bin" render "$ROOT/configs/demo.yaml"
                  --output "$ROOT/out/demo")
    echo "+ ${render[*]}"
    "${render[@]}" || { rc=$?; echo "storyrun render failed (exit $rc)" >&2; }
    return "$rc"
}

run_tests() {
    ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout "$TEST_TIMEOUT" "$@"
}

finish() {
    local rc=$1 t1
    t1=$(now_ms)
    printf '==> total %d.%01ds, exit %d\n' $(((t1 - T_START) / 1000)) $((((t1 - T_START) % 1000) / 100)) "$rc"
    exit "$rc"
}

cmd=${1:-build}
[ $# -gt 0 ] && shift
case "$cmd" in
    -h | --help | help)
        usage
        exit 0
        ;;
    build | demo | test) ;;
    *)
        echo "unknown command '$cmd'" >&2
        usage >&2
        exit 2
        ;;
esac
if [ "$cmd" != "test" ] && [ $# -gt 0 ]; then
    echo "'$cmd' takes no arguments (got: $*)" >&2
    exit 2
fi

rc=0
phase "packages" install_packages "$cmd" || finish $?
phase "configure ($BUILD_DIR)" configure || finish $?
phase "build (-j $JOBS)" build || finish $?
case "$cmd" in
    demo) phase "demo" demo || rc=$? ;;
    test) phase "tests" run_tests "$@" || rc=$? ;;
esac
finish "$rc"

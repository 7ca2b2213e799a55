#!/usr/bin/env bash
# A/B timing of builds on a lent GPU in one short device call, so that a kernel change is
# judged against its baseline on the same machine, in interleaved rounds.
#
#   here (no GPU needed):  ./scripts/gpu-ab.sh pack BASE_REV [VARIANT_REV ...]
#       builds `qk` at BASE_REV ("base"), at each VARIANT_REV (named by its short hash:
#       commit a variant to a scratch branch to time it) and at the working tree ("new"),
#       and the working tree's kernel test binaries (release), into .device/ab.tar.xz
#       (git-ignored), compressed to fit the device tool's carry limit.
#   on the GPU machine:    ./scripts/gpu-ab.sh run [qk bench run options...]
#       runs the kernel tests on the GPU (QK_TEST_BACKEND=cuda: the simulator runs are
#       the same everywhere), then `qk bench run` with the given options for every build
#       in pack order and then in reverse (base new new base; with variants base v new
#       new v base: drift in clocks or temperature cancels), and `qk bench compare` of
#       each build against base in both halves. Everything lands in target/gpu-ab, and,
#       after each step, in $OUT/gpu-ab.tar.xz when $OUT is set (the device tool returns
#       at most 8 files). Time: the tests take ~10 s, then 2 bench runs per build; size
#       the bench options so that 2 x builds runs fit the device call (a run over one
#       model's shapes at four M takes ~10 s on an H200; each run is cut at 240 s and
#       the compare step comes last, but every finished report is already saved).
#   or:                    ./scripts/gpu-ab.sh new [qk bench run options...]
#       `qk bench run` of the new build alone (no tests, no other build), into new-only/
#       next to what a `run` earlier in the same device call left: for experiments the
#       older builds do not know by name, timed against their reference in the same
#       interleaved rounds of one run.
#   then, optionally:      ./scripts/gpu-ab.sh profile NAME KERNEL_REGEX [qk bench run options...]
#       Nsight Compute (full set) of one launch of the new build's matching kernel: the
#       stall breakdown and hottest SASS lines printed, the report kept beside the timings.
#
# Example (device tool): carry [".device"], command
#   ./scripts/gpu-ab.sh run --shapes llama3-8b --m 1,16,256,4096 --reps 20 --warmup 3
# The explicit-only experiments are in every build, so one pack times them against the
# configurations the planner picks (decode, then large M):
#   ./scripts/gpu-ab.sh run --graph --shapes llama3-8b llama3-70b --m 1,4,8 --reps 15 \
#     --kernels w4a16_g128_sym,w4a16_g128_sym_swap_ab,w4a16_g128_sym_direct,w8a16,w8a16_swap_ab,w8a16_direct
# programmatic dependent launch against stream order (CUDA-graph timing only: consecutive
# launches must be adjacent kernel nodes), single GEMMs and the decoder layer (names the
# builds before 14b97b4 do not know):
#   ./scripts/gpu-ab.sh new --graph --shapes llama3-8b llama3-70b --m 1,8 --reps 15 \
#     --kernels w4a16_g128_sym,w4a16_g128_sym_pdl,w4a16_g128_actorder,w4a16_g128_actorder_pdl,w8a16,w8a16_pdl,layer_w4a16_g128,layer_w4a16_g128_pdl
#   ./scripts/gpu-ab.sh run --shapes llama3-8b llama3-70b --m 256,4096 --reps 10 \
#     --kernels w4a16_g128_sym,w4a16_g128_sym_tma,w4a16_g128_sym_n256,w4a16_g128_sym_n256_tma,w8a16,w8a16_n256
# and, to see which unit holds the large-M kernels back (L2 or issue; ncu-limits.py):
#   ./scripts/gpu-ab.sh profile wgmma 'large_wgmma$' --shapes 4096,28672 --m 4096 --kernels w4a16_g128_sym
#   ./scripts/gpu-ab.sh profile tma large_wgmma_tma --shapes 4096,28672 --m 4096 --kernels w4a16_g128_sym_tma
#   ./scripts/gpu-ab.sh profile n256 'large_wgmma_n256$' --shapes 4096,28672 --m 4096 --kernels w4a16_g128_sym_n256
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
ab="$root/.device/ab"
# The kernel test binaries worth running on a GPU (the rest do not launch kernels).
gpu_tests=(quant_kernels gemm_w8a8 gemm_w4a16 gemm_w8a16)

pack() {
    ./scripts/setup.sh
    rm -rf "$ab" && mkdir -p "$ab/new" "$ab/tests"
    # New: the working tree.
    cargo build --release --bin qk
    cp target/release/qk "$ab/new/qk"
    cargo test --release --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
wanted = set(sys.argv[1:])
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in wanted:
        print(m["target"]["name"], m["executable"])' "${gpu_tests[@]}" |
        while read -r name exe; do cp "$exe" "$ab/tests/$name"; done
    # The base and each variant: a worktree of the revision built with this checkout's
    # toolchain, in a target directory of its own: cargo hashes workspace crates by their
    # path relative to the workspace root, so a worktree's crates sharing target/ would
    # overwrite this checkout's artifacts (ptxsim, the build script) and leave them
    # looking fresh. MANIFEST lists the builds in timing order, "new" last.
    local rev slot tree first=1
    for rev in "$@"; do
        if ((first)); then slot=base; else slot="$(git rev-parse --short "$rev")"; fi
        first=0
        tree="$(mktemp -d)/$slot"
        git worktree add --detach "$tree" "$rev" >/dev/null
        (cd "$tree" && NVCC="$root/.toolchain/cuda/nvidia/cu13/bin/nvcc" CARGO_TARGET_DIR="$root/target/gpu-ab-base" \
            cargo build --release --bin qk)
        mkdir -p "$ab/$slot"
        cp "$root/target/gpu-ab-base/release/qk" "$ab/$slot/qk"
        git worktree remove --force "$tree"
        echo "$slot $(git rev-parse "$rev")" >>"$ab/MANIFEST"
    done
    echo "new $(git rev-parse HEAD)$(git diff --quiet HEAD || echo ' (dirty)')" >>"$ab/MANIFEST"
    strip "$ab"/*/qk "$ab"/tests/*
    tar -C "$ab" -cJf "$root/.device/ab.tar.xz" .
    rm -rf "$ab"
    ls -l "$root/.device/ab.tar.xz"
    cat <<EOF
packed; on the GPU machine run: ./scripts/gpu-ab.sh run [qk bench run options]
(device tool: carry [".device"])
EOF
}

out="$root/target/gpu-ab"
# The device tool returns at most 8 files of at most 16 MiB: the timings and texts go in
# one archive; Nsight Compute reports (a few MiB each) are copied beside it, one file each.
save() {
    if [[ -n "${OUT:-}" ]]; then
        tar -C "$out" --exclude='*.ncu-rep' -cJf "$OUT/gpu-ab.tar.xz" .
        find "$out" -maxdepth 1 -name '*.ncu-rep' -size -16M -exec cp {} "$OUT/" \;
    fi
}

# Unpacks the binaries (once) and puts the machine's cuBLAS on the library path.
prepare() {
    if [[ ! -f "$ab/MANIFEST" ]]; then
        mkdir -p "$ab" && tar -C "$ab" -xJf "$root/.device/ab.tar.xz"
    fi
    mkdir -p "$out" && cp "$ab/MANIFEST" "$out/"
    # cuBLAS / cuBLASLt for the FP16 baseline come from the machine's pip CUDA wheels.
    local libs
    libs="$(python3 -c 'import glob, os, site
dirs = site.getsitepackages() + [site.getusersitepackages()]
hits = [p for d in dirs for p in glob.glob(os.path.join(d, "nvidia", "*", "lib", "libcublasLt.so*"))]
print(os.path.dirname(hits[0]) if hits else "")' 2>/dev/null || true)"
    if [[ -n "$libs" ]]; then
        export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    else
        echo "warning: no pip cuBLAS found; cuBLAS baselines may be skipped" >&2
    fi
}

run() {
    rm -rf "$out" "$ab"
    prepare
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 |
        tee "$out/gpu.txt" || true
    # QK_TEST_BACKEND=cuda: the tests that only the simulator can answer (instruction
    # budgets, plans for the simulated H100) skip themselves; they ran in CI. One test
    # thread, so each test's output stays next to its name.
    for t in "$ab"/tests/*; do
        echo "== $(basename "$t")"
        QK_TEST_BACKEND=cuda timeout 150 "$t" --test-threads 1 --nocapture 2>&1 |
            grep -E "^test |test result|cuda: skipped|panicked|mismatch|assert" || true
    done | tee "$out/tests.txt"
    save
    # The builds in MANIFEST order, then reversed: run i and run 2n + 1 - i time the
    # same build, mirrored around the middle.
    local builds=() order=() i n j mirror
    mapfile -t builds < <(cut -d' ' -f1 "$ab/MANIFEST")
    n=${#builds[@]}
    order=("${builds[@]}")
    for ((i = n - 1; i >= 0; i--)); do order+=("${builds[i]}"); done
    i=0
    for v in "${order[@]}"; do
        i=$((i + 1))
        echo "== bench $i-$v ($(date +%T))"
        timeout 240 "$ab/$v/qk" bench run "$@" --out "$out/$i-$v" >"$out/$i-$v.log" 2>&1 ||
            echo "bench $i-$v failed (exit $?): see $i-$v.log"
        save
    done
    report() { find "$out/$1" -name report.json | head -1; }
    # Every build against base, in each half: compare-1-J.txt and its mirror.
    for ((j = 2; j <= n; j++)); do
        mirror=$((2 * n + 1 - j))
        "$ab/new/qk" bench compare "$(report "1-base")" "$(report "$j-${builds[j - 1]}")" 2>&1 |
            tee "$out/compare-1-$j.txt" || true
        "$ab/new/qk" bench compare "$(report "$((2 * n))-base")" "$(report "$mirror-${builds[j - 1]}")" 2>&1 |
            tee "$out/compare-$((2 * n))-$mirror.txt" || true
    done
    save
}

# The new build alone: one `qk bench run` with the given options, into new-only/ beside
# what an earlier `run` of the same device call left (so one call can do both).
new_only() {
    prepare
    echo "== bench new only ($(date +%T))"
    timeout 480 "$ab/new/qk" bench run "$@" --out "$out/new-only" >"$out/new-only.log" 2>&1 ||
        echo "bench new only failed (exit $?): see new-only.log"
    tail -n 40 "$out/new-only.log" || true
    save
}

# Nsight Compute (`--set full`) of the first launch of the kernels matching KERNEL_REGEX
# in one `qk bench run` of the new build (one point: pass --shapes, --m, --kernels).
# Keeps the report (profile-NAME.ncu-rep), its details page (ncu-NAME.txt), its
# per-SASS-instruction page (ncu-NAME-sass.csv) and its raw metrics (ncu-NAME-raw.csv),
# and prints the stall breakdown, the hottest instructions (scripts/ncu-hotspots.py) and
# which unit bounds the kernel: SM, L1, L2, DRAM, issue and tensor-pipe utilization
# (scripts/ncu-limits.py).
profile() {
    local name="$1" regex="$2"
    shift 2
    prepare
    timeout 150 ncu --set full --import-source no --clock-control none --kernel-name "regex:$regex" \
        --launch-count 1 -f -o "$out/profile-$name" \
        "$ab/new/qk" bench run "$@" --reps 1 --warmup 0 --no-l2-rotation --out "$out/profile-$name" \
        >"$out/ncu-$name.log" 2>&1 || echo "ncu failed: see ncu-$name.log"
    ncu -i "$out/profile-$name.ncu-rep" --page details --print-details all >"$out/ncu-$name.txt" 2>&1 || true
    ncu -i "$out/profile-$name.ncu-rep" --page source --print-source sass --csv >"$out/ncu-$name-sass.csv" 2>&1 || true
    ncu -i "$out/profile-$name.ncu-rep" --page raw --csv >"$out/ncu-$name-raw.csv" 2>&1 || true
    grep -E "Duration|Warp Cycles Per Issued|Stall [A-Z]" "$out/ncu-$name.txt" | head -20 || true
    python3 "$root/scripts/ncu-hotspots.py" "$out/ncu-$name-sass.csv" 15 || true
    python3 "$root/scripts/ncu-limits.py" "$out/ncu-$name-raw.csv" || true
    save
}

case "${1:-}" in
pack)
    shift
    pack "${1:?usage: gpu-ab.sh pack BASE_REV [VARIANT_REV ...]}" "${@:2}"
    ;;
run)
    shift
    run "$@"
    ;;
new)
    shift
    new_only "$@"
    ;;
profile)
    shift
    profile "${1:?usage: gpu-ab.sh profile NAME KERNEL_REGEX [qk bench run options]}" "${2:?KERNEL_REGEX}" "${@:3}"
    ;;
*)
    sed -n '/^set -euo pipefail/q;2,$p' "${BASH_SOURCE[0]}"
    exit 2
    ;;
esac

#!/usr/bin/env bash
# The test command: installs what the build needs (idempotent), builds the kernels
# (PTX + fatbins), runs every test of the workspace and every example, and says where
# the kernel tests ran: on the PTX simulator, on a GPU, or skipped for lack of one.
#
#   ./scripts/test.sh [extra cargo test args]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

./scripts/setup.sh

log="target/tmp/qk-backends.log"
rm -f "$log"
start=$(date +%s)
cargo test --workspace "$@"
# The examples (built by `cargo test`) check their own outputs against a reference and
# exit non-zero otherwise: run each, on a GPU when present, else on the simulator.
for example in examples/*.rs; do
  name="$(basename "$example" .rs)"
  echo "== example $name =="
  cargo run --quiet --example "$name"
done
end=$(date +%s)

echo
echo "== kernel test backends =="
if [[ -f "$log" ]]; then
  sim=$(awk -F'\t' '$2=="sim" && $3=="ran"' "$log" | wc -l)
  gpu=$(awk -F'\t' '$2=="cuda" && $3=="ran"' "$log" | wc -l)
  echo "kernel tests run on the PTX simulator: $sim"
  echo "kernel tests run on a CUDA GPU:        $gpu"
  # One line per reason ("skipped: no CUDA device", or a kernel the GPU cannot run).
  awk -F'\t' '$2=="cuda" && $3 ~ /^skipped/ { n[$3]++ }
    END { for (r in n) printf "kernel tests on a CUDA GPU skipped:    %d (%s)\n", n[r], r }' "$log"
  awk -F'\t' '$2=="sim" && $3 ~ /^skipped/ { n[$3]++ }
    END { for (r in n) printf "kernel tests on the simulator skipped: %d (%s)\n", n[r], r }' "$log"
else
  echo "no kernel test recorded a backend (filtered run?)"
fi
echo "test wall time: $((end - start)) s"

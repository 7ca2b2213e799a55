#!/usr/bin/env bash
# The bench command: installs what the build needs (idempotent) and runs every
# criterion bench. Without a CUDA device each bench says why nothing was timed and
# exits 0.
#
#   ./scripts/bench.sh [extra cargo bench args, e.g. -- dequant_int4]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh
cargo bench --workspace "$@"

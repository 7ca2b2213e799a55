#!/usr/bin/env bash
# Installs everything the build needs that a fresh CPU-only machine lacks, into
# project-local, git-ignored folders. Idempotent: a second run only checks stamps.
#
#   .toolchain/cuda   pinned CUDA 13.0 compiler wheels (nvcc, ptxas, headers) from PyPI
#   libclang          Debian's libclang for bindgen (system package, needs root/apt)
#
# Why 13.0 and not the newest 13.x: nvcc 13.0 emits PTX ISA 9.0, which the CUDA 13.0
# (R580) drivers of the GPUs we bench on can JIT; a newer nvcc emits PTX they reject.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/.toolchain/cuda"

# Every wheel pinned: an unpinned one resolves to a newer release whose headers do not
# match (cuda_fp16.h needs nv/target from the matching cccl).
cuda_wheels=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
)
stamp="$prefix/.installed"
want="${cuda_wheels[*]}"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$prefix/nvidia/cu13/bin/nvcc" ]]; then
  echo "setup: CUDA toolchain present ($prefix)"
else
  echo "setup: installing CUDA toolchain wheels into $prefix"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$prefix" "${cuda_wheels[@]}"
  echo "$want" > "$stamp"
fi
"$prefix/nvidia/cu13/bin/nvcc" --version | tail -n 2

# cuobjdump and nvdisasm (pinned in the script): the SASS budget tests read the kernels'
# main loops with scripts/sass-loops.py.
python3 "$root/scripts/sass-loops.py" --install

# bindgen loads libclang at build time. libclang1-14 alone cannot parse headers that
# include <stddef.h>; libclang-common-14-dev brings clang's resource headers.
if ldconfig -p | grep -q 'libclang-14\.so\|libclang\.so\.1\b' \
   && [[ -d /usr/lib/llvm-14/lib/clang ]]; then
  echo "setup: libclang present"
elif [[ -n "${LIBCLANG_PATH:-}" ]]; then
  echo "setup: using LIBCLANG_PATH=$LIBCLANG_PATH"
else
  echo "setup: installing libclang (Debian packages libclang1-14, libclang-common-14-dev)"
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    libclang1-14 libclang-common-14-dev >/dev/null
fi

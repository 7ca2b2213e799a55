#!/bin/sh
# Regenerates the checked-in PTX of every .cu here with nvcc 13.0 (compute_80).
# globals.cu is built with -lineinfo so the parser sees .file/.loc directives.
set -e
cd "$(dirname "$0")"
NVCC=${NVCC:-../../../../.toolchain/cuda/nvidia/cu13/bin/nvcc}
for f in *.cu; do
    extra=""
    [ "$f" = globals.cu ] && extra="-lineinfo"
    "$NVCC" -ptx -arch=compute_80 $extra -o "${f%.cu}.ptx" "$f"
done

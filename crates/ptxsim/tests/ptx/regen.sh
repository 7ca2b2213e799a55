#!/bin/sh
# Regenerates the checked-in PTX of every .cu here with nvcc 13.0 (compute_80).
# globals.cu is built with -lineinfo so the parser sees .file/.loc directives;
# wgmma.cu needs sm_90a (wgmma is an sm_90a-only instruction), tma.cu sm_90
# (cp.async.bulk.tensor).
set -e
cd "$(dirname "$0")"
NVCC=${NVCC:-../../../../.toolchain/cuda/nvidia/cu13/bin/nvcc}
for f in *.cu; do
    extra=""
    arch=compute_80
    [ "$f" = globals.cu ] && extra="-lineinfo"
    [ "$f" = wgmma.cu ] && arch=sm_90a
    [ "$f" = tma.cu ] && arch=sm_90
    "$NVCC" -ptx -arch=$arch $extra -o "${f%.cu}.ptx" "$f"
done

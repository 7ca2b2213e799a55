#!/usr/bin/env python3
"""The SASS of every loop of the built kernels, counted by opcode class, without a GPU.

ptxas decides what the GPU issues; the simulator counts PTX. This reads the SASS that
`build.rs` put in the fatbins (`cuobjdump -sass`), finds each loop (a branch to an
earlier address), and prints its static instruction count split into classes: the
dequantization arithmetic (LOP3/PRMT/SHF and the f16x2 HADD2/HFMA2/HMUL2), tensor-core
instructions, memory, integer/address arithmetic, control and synchronization. Static
counts include paths a run may skip (e.g. the asymmetric zero-point branch), so compare
the same kernel before and after a change, not kernels with each other.

usage: scripts/sass-loops.py [--arch sm_90a] [--fatbin FILE ...] [KERNEL_REGEX]
       scripts/sass-loops.py --install   (only install the disassembler; scripts/setup.sh)

Without --fatbin it reads the newest build's fatbins under target/*/build/qkernels-*/out.
cuobjdump and the nvdisasm it runs come from the PyPI wheels pinned below, installed by
scripts/setup.sh (or on first use) into the git-ignored .toolchain/cuda-tools (no GPU or
driver needed). The SASS budget tests (tests/gemm_w4a16.rs, tests/gemm_w8a16.rs) run it.
"""
import argparse
import collections
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, ".toolchain", "cuda-tools")
# The oldest releases on PyPI (there are no 13.0 wheels); they read the 13.0 toolkit's
# cubins. cuobjdump finds nvdisasm beside itself.
DISASSEMBLER_WHEELS = ["nvidia-cuda-cuobjdump==13.2.51", "nvidia-cuda-nvdisasm==13.2.51"]
TOOLS_BIN = os.path.join(TOOLS, "nvidia", "cu13", "bin")
CUOBJDUMP = os.path.join(TOOLS_BIN, "cuobjdump")

# A loop shorter than this many bytes of SASS (16 per instruction) is a spin or
# shuffle loop, not a kernel's main loop; listed only with --all.
MIN_LOOP_BYTES = 0x100

# Opcode (the mnemonic before the first '.') -> class, in the order printed.
CLASSES = [
    # LOP3 and SHF also do index arithmetic: in a loop without f16x2 work they are that.
    ("dequant", {"LOP3", "PRMT", "SHF", "HADD2", "HFMA2", "HMUL2", "I2F", "I2FP", "F2FP"}),
    ("tensor", {"HMMA", "HGMMA", "IMMA", "WARPGROUP"}),
    ("f32", {"FADD", "FMUL", "FFMA", "FMNMX", "F2F", "F2I", "MUFU", "FSETP", "FCHK"}),
    ("memory", {"LDG", "LDS", "LDSM", "LDGSTS", "STS", "STG", "LDC", "ULDC", "UTMALDG", "UBLKCP", "UBLKPF", "RED", "ATOM",
                "ATOMG", "ATOMS", "CCTL", "LD", "ST", "SHFL"}),
    ("int/addr", {"IMAD", "IADD3", "LEA", "VIADD", "ISETP", "SEL", "MOV", "UIADD3", "UIMAD", "UMOV", "USEL",
                  "UISETP", "ULEA", "ULOP3", "USHF", "IABS", "S2R", "S2UR", "CS2R", "PLOP3", "R2UR", "VIMNMX",
                  "IMNMX", "VIADDMNMX", "FSEL", "P2R", "R2P", "UPRMT", "ISCADD", "IADD", "UIADD", "BMSK", "BREV",
                  "UBREV", "POPC", "FLO", "UFLO"}),
    ("control/sync", {"BRA", "BAR", "DEPBAR", "LDGDEPBAR", "SYNCS", "WARPSYNC", "BSSY", "BSYNC", "EXIT", "NOP",
                      "RET", "CALL", "MEMBAR", "FENCE", "ERRBAR", "YIELD", "ELECT", "UCGABAR_ARV", "UCGABAR_WAIT",
                      "ACQBULK", "ARRIVES", "WARPGROUP_ARRIVE", "WARPGROUP_DEPBAR", "USETMAXREG", "BPT", "VOTEU",
                      "VOTE", "ACQ", "CGAERRBAR", "PREEXIT", "ENDCOLLECTIVE", "BREAK"}),
]
INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
BRANCH_TARGET = re.compile(r"\bBRA(?:\.[A-Z.]+)?\s+(?:!?U?P[0-9T],\s*)?`?\(?(0x[0-9a-f]+)")
FUNCTION = re.compile(r"Function : (\S+)")


def ensure_cuobjdump() -> str:
    if not all(os.access(os.path.join(TOOLS_BIN, t), os.X_OK) for t in ("cuobjdump", "nvdisasm")):
        print(f"sass-loops: installing {' '.join(DISASSEMBLER_WHEELS)} into {TOOLS}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--upgrade", "--target", TOOLS, *DISASSEMBLER_WHEELS],
            check=True,
        )
    return CUOBJDUMP


def newest_fatbins() -> list:
    stamps = glob.glob(os.path.join(ROOT, "target", "*", "build", "qkernels-*", "out", "kernels.stamp"))
    if not stamps:
        sys.exit("sass-loops: no built kernels under target/ (run cargo build --release first)")
    # Debug and release builds compile the same kernels: the newest release build, else
    # the newest build, and say which one was read.
    release = [s for s in stamps if os.sep + "release" + os.sep in s]
    out = os.path.dirname(max(release or stamps, key=os.path.getmtime))
    print(f"sass-loops: reading {os.path.relpath(out, ROOT)}", file=sys.stderr)
    return sorted(glob.glob(os.path.join(out, "*.fatbin")))


def opcode(text: str) -> str:
    text = re.sub(r"^@!?U?P[0-9T]\s+", "", text)
    return text.split()[0].split(".")[0]


def classify(op: str) -> str:
    for name, ops in CLASSES:
        if op in ops:
            return name
    return "other"


def functions(sass: str):
    """(name, [(address, text)]) per function of a cuobjdump -sass listing."""
    name, body = None, []
    for line in sass.splitlines():
        m = FUNCTION.search(line)
        if m:
            if name:
                yield name, body
            name, body = m.group(1), []
            continue
        m = INSTRUCTION.search(line)
        if m and name:
            body.append((int(m.group(1), 16), m.group(2)))
    if name:
        yield name, body


def report(name: str, body: list, show_all: bool) -> None:
    loops = []
    for addr, text in body:
        m = BRANCH_TARGET.search(text)
        if m and int(m.group(1), 16) < addr:
            start = int(m.group(1), 16)
            if show_all or addr - start >= MIN_LOOP_BYTES:
                loops.append((start, addr))
    print(f"{name}: {len(body)} instructions, {len(loops)} loop(s)")
    for start, end in loops:
        ops = [opcode(t) for a, t in body if start <= a <= end]
        by_class = collections.Counter(classify(op) for op in ops)
        by_op = collections.Counter(ops)
        classes = ", ".join(f"{c} {by_class[c]}" for c, _ in CLASSES + [("other", None)] if by_class[c])
        top = ", ".join(f"{op} {n}" for op, n in by_op.most_common(8))
        print(f"  loop {start:#06x}..{end:#06x}: {len(ops)} ({classes})")
        print(f"      top: {top}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="sm_90a", help="SASS architecture in the fatbin (default sm_90a)")
    p.add_argument("--fatbin", action="append", help="a fatbin to read, repeatable (default: the newest build's)")
    p.add_argument("--all", action="store_true", help=f"also loops shorter than {MIN_LOOP_BYTES} bytes")
    p.add_argument("--install", action="store_true", help="install the disassembler and exit")
    p.add_argument("kernel", nargs="?", default=".", help="regex on kernel names (default: all)")
    args = p.parse_args()
    tool = ensure_cuobjdump()
    if args.install:
        print(f"sass-loops: disassembler present ({os.path.relpath(TOOLS_BIN, ROOT)})")
        return 0
    pattern = re.compile(args.kernel)
    for fatbin in args.fatbin or newest_fatbins():
        run = subprocess.run([tool, "-sass", "-arch", args.arch, fatbin], capture_output=True, text=True)
        listed = sorted(functions(run.stdout)) if run.returncode == 0 else []
        if not listed:
            # cuobjdump fails, or lists nothing, for an architecture the fatbin lacks.
            why = run.stderr.strip() or "nothing listed"
            print(f"{os.path.basename(fatbin)}: no {args.arch} SASS ({why})", file=sys.stderr)
            continue
        for name, body in listed:
            if pattern.search(name):
                report(name, body, args.all)
    return 0


if __name__ == "__main__":
    sys.exit(main())

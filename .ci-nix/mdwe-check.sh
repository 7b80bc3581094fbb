#!/usr/bin/env bash
# What runs under MemoryDenyWriteExecute, which nixos-modules/sandbox.nix sets for every endoreg unit, and
# what does not, measured here. systemd implements the setting with the kernel's memory-deny-write-execute
# (prctl PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN; Linux 6.3 and newer, which the pinned NixOS's kernels are;
# older kernels get a seccomp filter that refuses the same and more). A wrapper sets it and execs the
# program (it is inherited by threads and children and cannot be lifted), then each case runs what a unit
# runs:
#   * a control: a writable and executable mapping is allowed without MDWE and refused with it;
#   * inference on the CPU (debug binary, .ci/setup's ONNX Runtime 1.22 wheel): `check`, `predict-image` and
#     `predict-video` with the demo model, `check` with the RegNet benchmark model (convolutions, MLAS);
#   * the same library marked as needing an executable stack (PT_GNU_STACK RWE), as ONNX Runtime 1.21 and
#     1.22 are when built from source like nixpkgs does (their build lost `-z noexecstack`, restored in
#     1.23: microsoft/onnxruntime#25200): glibc's dlopen then makes the stack executable, which MDWE
#     refuses (nixpkgs turned MDWE off for its piper service for this, NixOS/nixpkgs#402111);
#   * the media worker: the demo video (libx264), its anonymisation (decode, mask, libx264), and frame
#     extraction (JPEG, with swscale's fast-bilinear scaler, which FFmpeg generates at run time on x86).
# Then each worker's cases are held against its unit as the modules configure it (.ci-nix/eval-units.sh,
# with NIXOS_OFFLINE_EVAL_MIRRORS): a unit with MemoryDenyWriteExecute on must pass all of its cases, a unit
# with it off must have a case that is refused (else the reason to turn it off went away). Currently off for
# both: inference (nixos-modules/inference.nix: the library's executable stack) and media
# (nixos-modules/media.nix: frame extraction).
# Not covered: CUDA (no GPU here); the seccomp variant of older kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
export ENDOREG_CI_VENV="${ENDOREG_CI_VENV:-$PWD/target/ci-venv}"
# shellcheck source=/dev/null
source .ci/setup
python="$ENDOREG_CI_VENV/bin/python3"

cargo build --quiet --locked -p endoreg-inference -p endoreg-media
bin="$PWD/target/debug"

work="$(mktemp -d /tmp/endoreg-mdwe.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The wrapper: memory-deny-write-execute on, confirmed, then the program.
cat >"$work/mdwe.py" <<'EOF'
import ctypes, os, sys
PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit(f"mdwe: prctl(PR_SET_MDWE): {os.strerror(ctypes.get_errno())} (Linux 6.3 or newer needed)")
if libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) != PR_MDWE_REFUSE_EXEC_GAIN:
    sys.exit("mdwe: PR_GET_MDWE does not report the setting")
os.execvp(sys.argv[1], sys.argv[1:])
EOF
mdwe() { "$python" "$work/mdwe.py" "$@"; }

results="$work/results"
: >"$results"
case_() { # case_ UNIT NAME COMMAND...: runs COMMAND under MDWE, records ok or refused for UNIT
    local got=ok
    mdwe "${@:3}" >"$work/out" 2>&1 || got=refused
    printf '%-8s %-10s %s\n' "$got" "$1" "$2"
    [ "$got" = ok ] || sed 's/^/           /' "$work/out" | tail -n 2
    printf '%s\t%s\t%s\n' "$1" "$got" "$2" >>"$results"
}

echo "kernel $(uname -r), $(ldd --version | head -n1)"
wx='import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)'
"$python" -c "$wx" || { echo "mdwe: a W+X mapping fails even without MDWE: the control says nothing" >&2; exit 1; }
if mdwe "$python" -c "$wx" 2>/dev/null; then
    echo "mdwe: a writable and executable mapping was allowed under MDWE: the setting is not in force" >&2
    exit 1
fi
echo "control: a writable and executable mapping is allowed without MDWE and refused with it"

# A small processor layout (the demo video's overlays, the endoscope image); 480 is a multiple of 32, as
# 1920 is, the width at which swscale uses its generated scaler.
cat >"$work/layout.toml" <<'EOF'
processor = "mdwe_check"
width = 480
height = 270
regions = [
  { name = "endoscope_image", kind = "endoscope_image", x = 145, y = 8, width = 330, height = 255 },
  { name = "patient_name", kind = "patient_information", x = 5, y = 19, width = 135, height = 11 },
]
EOF
"$bin/endoreg-media" demo-video "$work/demo.mp4" --layout-file "$work/layout.toml" --width 480 --height 270 --seconds 2 >/dev/null
"$bin/endoreg-media" snapshot "$work/demo.mp4" 10 "$work/frame.png" >/dev/null

# --- inference (ONNX Runtime on the CPU) ---------------------------------------------------------------
models="$PWD/crates/inference/models"
demo="$models/endoreg-demo-multilabel.onnx"
export ENDOREG_DATA_DIR="$work/data" ENDOREG_RUNTIME__EXECUTION_PROVIDER=cpu
case_ inference "inference check, demo model" env ENDOREG_MODEL__PATH="$demo" "$bin/endoreg-inference" check
case_ inference "inference predict-image, demo model" env ENDOREG_MODEL__PATH="$demo" "$bin/endoreg-inference" predict-image "$work/frame.png"
case_ inference "inference predict-video, demo model (FFmpeg decoding and preprocessing)" \
    env ENDOREG_MODEL__PATH="$demo" "$bin/endoreg-inference" predict-video "$work/demo.mp4" --layout-file "$work/layout.toml"
# the benchmark's model with the benchmark's sidecar (crates/inference/benches/inference.rs)
"$python" crates/inference/scripts/make_regnet_benchmark_model.py "$work/regnet.onnx" >/dev/null
sed -n '/^const SIDECAR: &str = r#"/,/^"#;$/p' crates/inference/benches/inference.rs | sed '1s/^const SIDECAR: &str = r#"//; $d' >"$work/regnet.toml"
case_ inference "inference check, RegNet benchmark model" env ENDOREG_MODEL__PATH="$work/regnet.onnx" "$bin/endoreg-inference" check

# the same library with an executable-stack flag: loads without MDWE, is refused with it
"$python" - "$ORT_DYLIB_PATH" "$work/libonnxruntime-execstack.so" <<'EOF'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
assert data[:4] == b"\x7fELF" and data[4] == 2, "not a 64-bit ELF file"
phoff, = struct.unpack_from("<Q", data, 0x20)
phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
for i in range(phnum):
    off = phoff + i * phentsize
    p_type, p_flags = struct.unpack_from("<II", data, off)
    if p_type == 0x6474E551:  # PT_GNU_STACK
        struct.pack_into("<I", data, off + 4, p_flags | 1)  # PF_X
        open(sys.argv[2], "wb").write(data)
        sys.exit(0)
sys.exit("no PT_GNU_STACK")
EOF
env ORT_DYLIB_PATH="$work/libonnxruntime-execstack.so" ENDOREG_MODEL__PATH="$demo" "$bin/endoreg-inference" check >/dev/null 2>&1 \
    || { echo "mdwe: the executable-stack library does not load even without MDWE (glibc 2.41 or newer refuses it)" >&2; exit 1; }
case_ inference "inference check, demo model, library with an executable stack (nixpkgs' ONNX Runtime 1.21/1.22)" \
    env ORT_DYLIB_PATH="$work/libonnxruntime-execstack.so" ENDOREG_MODEL__PATH="$demo" "$bin/endoreg-inference" check

# --- media (FFmpeg, libx264) --------------------------------------------------------------------------------
case_ media "media demo-video (libx264)" "$bin/endoreg-media" demo-video "$work/mdwe.mp4" --layout-file "$work/layout.toml" --width 480 --height 270 --seconds 2
case_ media "media anonymise (decode, mask, libx264)" "$bin/endoreg-media" anonymise "$work/mdwe.mp4" "$work/anon.mp4" --layout-file "$work/layout.toml"
case_ media "media extract-frames (JPEG; swscale's generated fast-bilinear scaler)" "$bin/endoreg-media" extract-frames "$work/anon.mp4" "$work/frames" --step 10

# --- against the units as configured -----------------------------------------------------------------------
if [ -z "${NIXOS_OFFLINE_EVAL_MIRRORS:-}" ]; then
    echo "mdwe: not compared with the modules' units (set NIXOS_OFFLINE_EVAL_MIRRORS)"
    exit 0
fi
.ci-nix/eval-units.sh "$work/units.json"
python3 - "$work/units.json" "$results" <<'EOF'
import json, sys
hosts = json.load(open(sys.argv[1]))
units = {"inference": "endoreg-inference", "media": "endoreg-media-1"}
results = [line.rstrip("\n").split("\t") for line in open(sys.argv[2])]
problems = []
for worker, unit in units.items():
    configs = [h[unit]["serviceConfig"] for h in hosts.values() if unit in h]
    if not configs:
        problems.append(f"no host has {unit}")
        continue
    refused = [name for w, got, name in results if w == worker and got == "refused"]
    for mdwe in sorted({c.get("MemoryDenyWriteExecute", False) for c in configs}):
        if mdwe and refused:
            problems.append(f"{unit} has MemoryDenyWriteExecute on, but under it refused: " + "; ".join(refused))
        if not mdwe and not refused:
            problems.append(f"{unit} has MemoryDenyWriteExecute off, but every case runs under it: turn it on")
        print(f"{unit}: MemoryDenyWriteExecute {'on' if mdwe else 'off'}, {len(refused)} case(s) refused under it")
if problems:
    sys.exit("mdwe: " + "\nmdwe: ".join(problems))
print("mdwe: every unit's MemoryDenyWriteExecute fits what runs under it")
EOF

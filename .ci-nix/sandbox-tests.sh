#!/usr/bin/env bash
# The workspace's tests as `nix flake check` runs them (checks.cargo-test), on a machine without a Nix store:
# the environment is the one tests/cargo-test-env.nix describes and nothing else. In a private mount and
# network namespace (root needed; nothing outside changes):
#   * the packages the flake puts there appear at stand-in store paths, mapped to this machine's own
#     (postgresql: Debian's /usr/lib/postgresql/<v>, its bin/ and lib/; onnxruntime: the libonnxruntime.so of
#     .ci/setup's venv; python3.withPackages: an environment of that venv's interpreter and site-packages,
#     which must import what the flake asks for); a package without a mapping here fails, so the file and
#     this script cannot drift apart;
#   * Debian's /usr/lib/postgresql/<v>/bin is hidden, so a harness that looks there instead of PATH or the
#     flake's variables fails here as in the sandbox;
#   * the repository shows only the flake's test files (`files`) and target/;
#   * only loopback networking; the tests run as `nobody` (the sandbox's build user is not root) with
#     `env -i`: PATH holds stdenv's tools (coreutils, sh, grep, sed, ...) and the flake's programs only,
#     the variables are the flake's, HOME=/homeless-shelter, TMPDIR private; skipped tests as in the flake.
# FFmpeg is linked (buildInputs), so there is nothing of it to map: the binaries use this machine's libraries.
#
# Usage: .ci-nix/sandbox-tests.sh [--all]
#   default: a cheap subset that needs every mapped package: the registry's PostgreSQL variants and the
#            access-matrix test (docs/access.md), the inference model tests (ONNX Runtime, Python) and
#            EndoregDB's preprocessing (Python, Pillow), the media worker's video tests (FFmpeg)
#   --all:   every test of the workspace
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

[ "$(id -u)" -eq 0 ] || { echo "sandbox-tests: needs root (unshare, mount)" >&2; exit 1; }
for tool in unshare setpriv ip nix-instantiate; do
    command -v "$tool" >/dev/null || { echo "sandbox-tests: $tool is missing (util-linux, iproute2, nix-bin)" >&2; exit 1; }
done
export ENDOREG_CI_VENV="${ENDOREG_CI_VENV:-$repo/target/ci-venv}"
# shellcheck source=/dev/null
source .ci/setup
venv="$ENDOREG_CI_VENV"

all=false
[ "${1:-}" = "--all" ] && all=true

work="$(mktemp -d /tmp/endoreg-sandbox-tests.XXXXXX)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
store="$work/store"

# --- the flake's test environment, with each package at a stand-in store path ---------------------------
# Only the packages named here exist; python3.withPackages records the modules asked for.
cat >"$work/env.nix" <<EOF
let
  store = "$store";
  pkg = name: { outPath = "\${store}/\${name}"; };
  pythonModules = builtins.listToAttrs (map (n: { name = n; value = n; }) [ "onnx" "numpy" "pillow" ]);
  pkgs = {
    postgresql = pkg "postgresql";
    onnxruntime = pkg "onnxruntime";
    python3.withPackages = f: pkg "python3-env" // { modules = f pythonModules; };
  };
  e = import $repo/tests/cargo-test-env.nix { inherit pkgs; };
in
{
  inherit (e) files env skip;
  path = map (p: "\${p}/bin") e.nativeCheckInputs;
  pythonModules = builtins.concatMap (p: p.modules or [ ]) e.nativeCheckInputs;
  packages = map (p: baseNameOf p.outPath) e.nativeCheckInputs;
}
EOF
if ! nix-instantiate --eval --strict --json "$work/env.nix" >"$work/env.json" 2>"$work/env.err"; then
    cat "$work/env.err" >&2
    echo "sandbox-tests: tests/cargo-test-env.nix uses a package or Python module without a mapping in $0" >&2
    exit 1
fi

# The venv's Python stands for python3.withPackages: it must have every module the flake asks for.
python3 - "$work/env.json" "$venv/bin/python3" <<'EOF'
import json, subprocess, sys
imports = {"onnx": "onnx", "numpy": "numpy", "pillow": "PIL"}
mods = json.load(open(sys.argv[1]))["pythonModules"]
r = subprocess.run([sys.argv[2], "-c", "import " + ", ".join(imports[m] for m in mods)])
sys.exit(r.returncode)
EOF

# --- the test binaries ------------------------------------------------------------------------------------
if $all; then
    targets=(--workspace)
else
    targets=(-p endoreg-registry --test it -p endoreg-inference --test model --test endoregdb_preprocessing
             -p endoreg-media --test video)
fi
cargo test --locked --no-run --message-format=json "${targets[@]}" 2>"$work/build.err" >"$work/build.json" \
    || { cat "$work/build.err" >&2; exit 1; }
# one line per binary: the package directory (cargo runs tests there) and the executable
python3 - "$work/build.json" >"$work/binaries" <<'EOF'
import json, os, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(os.path.dirname(m["manifest_path"]), m["executable"], m["target"]["name"])
EOF

# --- stdenv's tools: what PATH holds in the sandbox before the flake's programs ---------------------------
mkdir -p "$work/stdenv/bin"
for p in coreutils findutils diffutils sed grep mawk tar gzip bzip2 make bash patch xz-utils file; do
    dpkg -L "$p" 2>/dev/null | grep -E '^/(usr/)?s?bin/[^/]+$' | while read -r f; do
        [ -x "$f" ] && ln -sf "$f" "$work/stdenv/bin/$(basename "$f")"
    done
done
# (nixpkgs' gawk and bash provide awk and sh)
ln -sf "$(command -v mawk)" "$work/stdenv/bin/awk"
ln -sf "$(command -v bash)" "$work/stdenv/bin/sh"

pgdir="$(ls -d /usr/lib/postgresql/* 2>/dev/null | sort -V | tail -n1)"
[ -x "$pgdir/bin/initdb" ] || { echo "sandbox-tests: no PostgreSQL under /usr/lib/postgresql to map (apt-get install postgresql)" >&2; exit 1; }
ortlib="$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n1)"
# the venv's interpreter (its installation, which may lie where `nobody` cannot reach) and site-packages
read -r pybase pyver pysite < <("$venv/bin/python3" -c 'import sys, sysconfig; print(sys.base_prefix, "python%d.%d" % sys.version_info[:2], sysconfig.get_paths()["purelib"])')
mkdir -p "$work/build" "$work/src" && chown nobody "$work/build"
# Debug builds of rust-embed (age's messages) read their files from cargo's registry at run time, where the
# sandbox's release build has them embedded: when `nobody` cannot read the registry here (under root's home),
# the namespace shows an empty home with only the registry in it.
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
hide_home=""
if ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -r "$registry" && [[ "$registry" == "$HOME"/* ]]; then
    hide_home="$HOME"
fi

# --- inside the namespaces ----------------------------------------------------------------------------------
# (a file of its own: bash reads a script as it runs, and the repository is covered while this one runs)
cat >"$work/inner.sh" <<'EOF'
set -euo pipefail
work="$1" repo="$2" pgdir="$3" ortlib="$4" filters="$5" pybase="$6" pyver="$7" pysite="$8" registry="$9" hide_home="${10}"
store="$work/store"
mount --make-rprivate /
ip link set lo up

# the stand-in store paths
# (PostgreSQL finds its lib/ beside its bin/, like nixpkgs' package; the python environment is a venv of
# the interpreter's installation with the site-packages of .ci/setup's venv)
mkdir -p "$store/postgresql" "$store/onnxruntime/lib" "$store/python-base" \
    "$store/python3-env/bin" "$store/python3-env/lib/$pyver/site-packages"
mount --bind "$pgdir" "$store/postgresql"
ln -s "$ortlib" "$store/onnxruntime/lib/libonnxruntime.so"
mount --bind "$pybase" "$store/python-base"
mount --bind "$pysite" "$store/python3-env/lib/$pyver/site-packages"
ln -s "$store/python-base/bin/$pyver" "$store/python3-env/bin/python3"
printf 'home = %s\ninclude-system-site-packages = false\n' "$store/python-base/bin" >"$store/python3-env/pyvenv.cfg"
if [ -n "$hide_home" ]; then
    mkdir -p "$work/registry"
    mount --bind "$registry" "$work/registry"
    mount -t tmpfs -o mode=755 none "$hide_home"
    mkdir -p "$registry"
    mount --bind "$work/registry" "$registry"
fi
# Debian's PostgreSQL binaries are gone from where the harness used to look
for d in /usr/lib/postgresql/*/bin; do mount -t tmpfs -o ro,mode=755 none "$d"; done

# the repository as the sandbox has it: the flake's test files and the build
python3 - "$work/env.json" >"$work/files" <<'PY'
import json, sys
for f in json.load(open(sys.argv[1]))["files"]:
    print(f)
PY
while read -r f; do
    if [ -d "$repo/$f" ]; then mkdir -p "$work/src/$f"; else mkdir -p "$(dirname "$work/src/$f")"; : >"$work/src/$f"; fi
    mount --bind "$repo/$f" "$work/src/$f"
done <"$work/files"
mkdir -p "$work/src/target" && mount --bind "$repo/target" "$work/src/target"
mount --rbind "$work/src" "$repo"

# the environment: the flake's variables and PATH, nothing inherited
mapfile -t envvars < <(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
for k, v in e["env"].items(): print(f"{k}={v}")
print("PATH=" + ":".join(e["path"] + [sys.argv[2] + "/stdenv/bin"]))
' "$work/env.json" "$work")
mapfile -t skips < <(python3 -c '
import json, sys
for t in json.load(open(sys.argv[1]))["skip"]: print("--skip"); print(t)
' "$work/env.json")
read -r -a filter <<<"$filters"

status=0
while read -r dir exe name; do
    args=()
    [ "$name" = it ] && args=("${filter[@]}")
    echo "== $name (${dir#"$repo"/})"
    ( cd "$dir" && setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all \
        env -i "${envvars[@]}" HOME=/homeless-shelter TMPDIR="$work/build" "$exe" "${args[@]}" "${skips[@]}" ) || status=1
done <"$work/binaries"
exit "$status"
EOF

# in the subset, of the registry's tests those on PostgreSQL and the one reading docs/access.md
filters=""
$all || filters="postgres access::"
start=$SECONDS
if unshare --mount --net --fork -- bash "$work/inner.sh" "$work" "$repo" "$pgdir" "$ortlib" "$filters" "$pybase" "$pyver" "$pysite" "$registry" "$hide_home"; then
    echo "sandbox-tests: passed in the flake's environment ($((SECONDS - start)) s)"
else
    echo "sandbox-tests: FAILED in the flake's environment (tests/cargo-test-env.nix)" >&2
    exit 1
fi

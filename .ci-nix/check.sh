#!/usr/bin/env bash
# The offline checks of the Nix side: every .nix file parses, deadnix is clean, formatting is nixpkgs-fmt's,
# the flake's lock is complete (`nix flake metadata --no-update-lock-file`, no network), the inventory and
# the secrets' recipients evaluate and match the encrypted files, every NixOS option the modules set exists
# (tests/check-options.py against ../shared/nix/nixos-options.json), and the PostgreSQL, ONNX Runtime, Python
# and FFmpeg tests in the environment checks.cargo-test gives them in the Nix sandbox (.ci-nix/sandbox-tests.sh;
# root, about 30 s once the test binaries are built), and which workers run under MemoryDenyWriteExecute
# (.ci-nix/mdwe-check.sh, Linux 6.3 or newer, about 10 s). With the mirrors of the offline evaluator present
# (NIXOS_OFFLINE_EVAL_MIRRORS), also every host and check evaluated by it, and the exposure score of every
# host's units (.ci-nix/unit-security.sh).
#
# Runs from any directory on Debian 12 / Ubuntu; installs what it needs (apt: nix-bin; cargo: deadnix,
# nixpkgs-fmt) only when missing. Runs every check, then exits non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

DEADNIX_VERSION=1.3.1
NIXPKGS_FMT_VERSION=1.3.0
SHARED="${ENDOREG_SHARED:-../shared}"
export NIXOS_OPTIONS_JSON="${NIXOS_OPTIONS_JSON:-$SHARED/nix/nixos-options.json}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- tools ---------------------------------------------------------------------------------------------
if ! command -v nix-instantiate >/dev/null 2>&1; then
    echo "nix-check: installing nix-bin"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nix-bin >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
export PATH="$HOME/.cargo/bin:$PATH"
cargo_tool() { # cargo_tool CRATE VERSION: installs CRATE@VERSION unless that version is on PATH
    local have
    have="$("$1" --version 2>/dev/null || true)"
    if [[ "$have" != *"$2"* ]]; then
        command -v cargo >/dev/null 2>&1 || { echo "nix-check: cargo is needed to install $1 (run .ci/setup)" >&2; exit 1; }
        echo "nix-check: installing $1 $2"
        cargo install --quiet --locked "$1@$2"
    fi
}
cargo_tool deadnix "$DEADNIX_VERSION"
cargo_tool nixpkgs-fmt "$NIXPKGS_FMT_VERSION"

NIX=(nix --extra-experimental-features "nix-command flakes" --option warn-dirty false)
# Without write access to /nix/store and without a daemon, use a store of our own (sources only are
# copied there; nothing is built).
if [ ! -w /nix/store ] && [ ! -S /nix/var/nix/daemon-socket/socket ]; then
    NIX+=(--store "${XDG_CACHE_HOME:-$HOME/.cache}/endoreg-nix-store")
fi

# The Nix files of the repository: tracked, and new ones not yet committed.
mapfile -t NIX_FILES < <(git ls-files --cached --others --exclude-standard -- '*.nix' | sort -u)

failed=()
step() { # step NAME COMMAND...: runs a check, remembers a failure
    echo "== $1"
    if "${@:2}"; then :; else failed+=("$1"); fi
}

# --- checks --------------------------------------------------------------------------------------------
parse_all() {
    local f rc=0
    for f in "${NIX_FILES[@]}"; do
        nix-instantiate --parse "$f" >/dev/null || { echo "does not parse: $f" >&2; rc=1; }
    done
    [ "$rc" -eq 0 ] && echo "${#NIX_FILES[@]} files parse"
    return "$rc"
}

deadnix_all() {
    deadnix --fail "${NIX_FILES[@]}" && echo "no unused bindings"
}

format_all() {
    nixpkgs-fmt --check "${NIX_FILES[@]}"
}

flake_lock() {
    # A copy of what a commit would contain (a git flake sees only tracked files; target/ is huge).
    local tmp rc=0
    tmp="$(mktemp -d)"
    git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp" 2>/dev/null || true
    cp flake.nix flake.lock "$tmp/"
    if "${NIX[@]}" flake metadata --offline --no-update-lock-file "path:$tmp" >"$tmp.out" 2>&1; then
        if cmp -s flake.lock "$tmp/flake.lock"; then
            grep -c "github:" "$tmp.out" | sed 's/$/ locked inputs, lock unchanged/'
        else
            echo "nix flake metadata changed flake.lock" >&2
            rc=1
        fi
    else
        cat "$tmp.out" >&2
        echo "flake.lock is incomplete or inconsistent with flake.nix (Nix would need the network)" >&2
        rc=1
    fi
    rm -rf "$tmp" "$tmp.out"
    return "$rc"
}

inventory() {
    # (a function run as a condition does not stop at the first error: each command says so itself)
    nix-instantiate --eval --strict --json hosts/inventory.nix >/dev/null || return 1
    nix-instantiate --eval --strict --json secrets/secrets.nix >/dev/null || return 1
    # every secret named in the inventory has its file, and every file is named (recipients known)
    python3 - <<'EOF'
import json, os, subprocess, sys
rules = json.loads(subprocess.check_output(["nix-instantiate", "--eval", "--strict", "--json", "secrets/secrets.nix"]))
files = {os.path.relpath(os.path.join(d, f), "secrets") for d, _, fs in os.walk("secrets") for f in fs if f.endswith(".age")}
missing = sorted(set(rules) - files)
unknown = sorted(files - set(rules))
for m in missing:
    print(f"secrets/{m} is named in hosts/inventory.nix but does not exist (agenix -e {m})", file=sys.stderr)
for u in unknown:
    print(f"secrets/{u} is not named in hosts/inventory.nix: nobody knows its recipients", file=sys.stderr)
hosts = json.loads(subprocess.check_output(["nix-instantiate", "--eval", "--strict", "--json", "hosts/inventory.nix"]))["hosts"]
print(f"{len(hosts)} hosts, {len(rules)} secrets with recipients, all present")
sys.exit(1 if missing or unknown else 0)
EOF
}

options() {
    python3 tests/check-options.py || return 1
    local tmp
    tmp="$(mktemp)"
    python3 tests/check-options.py --write-extra-options "$tmp" >/dev/null
    if ! cmp -s "$tmp" tests/nixos-options-newer.json; then
        echo "tests/nixos-options-newer.json is out of date: tests/check-options.py --write-extra-options tests/nixos-options-newer.json" >&2
        rm -f "$tmp"
        return 1
    fi
    rm -f "$tmp"
}

offline_eval() {
    local tool="$SHARED/tools/nixos-offline-eval/run"
    local mirrors="${NIXOS_OFFLINE_EVAL_MIRRORS:-}"
    if [ ! -x "$tool" ] || [ -z "$mirrors" ] || [ ! -d "$mirrors/nix-community+nixpkgs.lib/repo" ]; then
        echo "skipped: set NIXOS_OFFLINE_EVAL_MIRRORS to the fetched mirrors (nixpkgs.lib, agenix, impermanence, disko)"
        return 0
    fi
    "$tool" --deep --checks --extra-options tests/nixos-options-newer.json .
}

unit_security() {
    if [ -z "${NIXOS_OFFLINE_EVAL_MIRRORS:-}" ] || ! command -v systemd-analyze >/dev/null 2>&1; then
        echo "skipped: needs NIXOS_OFFLINE_EVAL_MIRRORS and systemd-analyze"
        return 0
    fi
    .ci-nix/unit-security.sh
}

step "every .nix file parses" parse_all
step "deadnix" deadnix_all
step "nixpkgs-fmt --check" format_all
step "nix flake metadata --no-update-lock-file (offline)" flake_lock
step "inventory and secrets evaluate" inventory
step "NixOS options exist (tests/check-options.py)" options
step "nixos-offline-eval --deep --checks" offline_eval
step "tests in checks.cargo-test's environment (.ci-nix/sandbox-tests.sh)" as_root .ci-nix/sandbox-tests.sh
step "memory-deny-write-execute where the modules rely on it (.ci-nix/mdwe-check.sh)" .ci-nix/mdwe-check.sh
step "systemd-analyze security of every host's units (.ci-nix/unit-security.sh)" unit_security

if [ "${#failed[@]}" -gt 0 ]; then
    printf 'nix-check: FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "nix-check: all Nix checks passed"

#!/usr/bin/env bash
# Usage: .ci-nix/eval-units.sh OUT.json
# Writes the endoreg systemd units of every host ({host: {unit: {serviceConfig, script}}}) as NixOS would
# configure them, evaluated without NixOS by nixos-offline-eval (the modules are real, nixpkgs' NixOS modules
# are option declarations; see its README). For checks of the units' settings: .ci-nix/unit-security.sh,
# .ci-nix/mdwe-check.sh. Needs NIXOS_OFFLINE_EVAL_MIRRORS (see .ci-nix/check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: eval-units.sh OUT.json}"
SHARED="${ENDOREG_SHARED:-../shared}"
tool="$SHARED/tools/nixos-offline-eval"
[ -n "${NIXOS_OFFLINE_EVAL_MIRRORS:-}" ] || { echo "eval-units: set NIXOS_OFFLINE_EVAL_MIRRORS (the fetched mirrors of nixos-offline-eval)" >&2; exit 1; }

# The evaluator assembles the flake with its stand-ins and keeps them (--keep); the units are read from there.
out="$("$tool/run" --keep --extra-options tests/nixos-options-newer.json . 2>&1)" || { echo "$out" >&2; exit 1; }
eval_dir="$(sed -n 's/^work directory kept: //p' <<<"$out")"
[ -d "$eval_dir" ] || { echo "$out" >&2; echo "eval-units: nixos-offline-eval kept no work directory" >&2; exit 1; }
trap 'rm -rf "$eval_dir"' EXIT

overrides=(--override-input nixpkgs "path:$eval_dir/fake-nixpkgs" --override-input nixpkgs/nixpkgs-lib "path:$eval_dir/nixpkgs-lib"
           --override-input crane "path:$tool/stubs/crane")
for input in "$eval_dir"/inputs/*; do overrides+=(--override-input "$(basename "$input")" "path:$input"); done
nix --extra-experimental-features "nix-command flakes" eval --no-write-lock-file "${overrides[@]}" --json "path:$eval_dir/flake#nixosConfigurations" \
    --apply 'hosts: builtins.mapAttrs (_: h: let s = h.config.systemd.services; in builtins.listToAttrs (map (n: { name = n; value = { inherit (s.${n}) serviceConfig script; }; })
               (builtins.filter (n: builtins.substring 0 8 n == "endoreg-") (builtins.attrNames s)))) hosts' \
    >"$target" 2>"$target.err" || { cat "$target.err" >&2; rm -f "$target.err"; exit 1; }
rm -f "$target.err"

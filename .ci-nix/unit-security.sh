#!/usr/bin/env bash
# The exposure score (`systemd-analyze security`) of every endoreg unit of every host, computed here without
# NixOS: the hosts are evaluated by nixos-offline-eval (the modules are real, nixpkgs' NixOS modules are not),
# each unit's serviceConfig is written as a unit file the way NixOS writes it (a list is one line per
# element, booleans as true/false), and systemd-analyze rates the file (--offline=true). Fails when a unit
# of the services (a DynamicUser one, from nixos-modules/sandbox.nix) scores above 2.0, the limit the VM tests
# assert on the booted units; the others (root oneshots such as endoreg-secrets) are listed.
#
# The score is this machine's systemd's (Debian 12: systemd 252; the pinned NixOS has a newer one, whose
# weights may differ slightly); the VM tests measure the real units. Needs NIXOS_OFFLINE_EVAL_MIRRORS (see
# .ci-nix/check.sh; .ci-nix/eval-units.sh evaluates) and systemd-analyze.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=2.0

command -v systemd-analyze >/dev/null || { echo "unit-security: systemd-analyze is missing (apt-get install systemd)" >&2; exit 1; }
work="$(mktemp -d /tmp/endoreg-unit-security.XXXXXX)"
trap 'rm -rf "$work"' EXIT
.ci-nix/eval-units.sh "$work/units.json"

python3 - "$work" "$limit" <<'EOF'
import json, os, re, subprocess, sys
work, limit = sys.argv[1], float(sys.argv[2])
hosts = json.load(open(os.path.join(work, "units.json")))
def value(v):
    return ("true" if v else "false") if isinstance(v, bool) else str(v)
worst = []
for host, units in sorted(hosts.items()):
    for name, unit in sorted(units.items()):
        config = unit["serviceConfig"]
        lines = ["[Unit]", f"Description={name}", "[Service]"]
        if unit["script"] and "ExecStart" not in config:
            # NixOS runs `script` as the unit's ExecStart
            lines.append("ExecStart=/run/current-system/sw/bin/sh -c true")
        for key, v in config.items():
            for item in (v if isinstance(v, list) else [v]):
                lines.append(f"{key}={value(item)}")
        path = os.path.join(work, f"{host}-{name}.service")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = subprocess.run(["systemd-analyze", "security", "--no-pager", "--offline=true", path], capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
        if m is None:
            sys.exit(f"unit-security: systemd-analyze rated no {name} of {host}:\n{r.stdout}{r.stderr}")
        score = float(m.group(1))
        sandboxed = config.get("DynamicUser") is True
        print(f"{score:4.1f}  {host:10} {name}{'' if sandboxed else '  (runs as root, not from nixos-modules/sandbox.nix)'}")
        if sandboxed and score > limit:
            worst.append(f"{host} {name} {score}")
if worst:
    sys.exit(f"unit-security: above {limit}: " + ", ".join(worst))
print(f"unit-security: every endoreg unit at or below {limit}")
EOF

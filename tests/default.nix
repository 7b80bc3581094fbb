# Nix-side checks: NixOS VM tests (they need KVM; every node and script also evaluates without it) and
# evaluation checks. Included in the flake's `checks`.
{ self, pkgs, lib }:
let
  vmTest = file: pkgs.testers.runNixOSTest (import file { inherit self; });

  # The repository's Nix files (builtins.path rather than lib.fileset: it also evaluates with older Nix).
  root = toString ../.;
  nixFiles = builtins.path {
    name = "endoreg-nix-files";
    path = ../.;
    filter = path: type:
      let
        top = builtins.head (lib.splitString "/" (lib.removePrefix "${root}/" path));
      in
      lib.elem top [ "flake.nix" "nixos-modules" "roles" "hosts" "secrets" "tests" ]
      && (type == "directory" || lib.hasSuffix ".nix" path);
  };
in
{
  # A data-processing host boots; PostgreSQL is provisioned; the knowledge base is loaded; the API answers
  # with the token from an age secret; the unit's exposure is <= 2.0; backups export and restore.
  vm-registry = vmTest ./registry.nix;
  # Write, reboot: only declared state survives, and the traps (machine-id, host key, /var/lib/private) hold.
  vm-impermanence = vmTest ./impermanence.nix;
  # A service reads its credential and restarts when the secret changes; a host without the key fails clearly.
  vm-secrets = vmTest ./secrets.nix;
  # Two hosts sharing S3 storage: the registry and a media worker on `proc` (data-processing, with Garage), the
  # inference service on the CPU on `gpu` (ai-deploy without a GPU): an uploaded video ends `predicted` with its
  # predicted segments and its probabilities in the bucket; a changed model file under a known version stops
  # the service, a new version starts.
  vm-pipeline = vmTest ./pipeline.nix;
  # The Nix files are formatted (nixpkgs-fmt) and have no unused bindings (deadnix).
  nix-lint = pkgs.runCommand "endoreg-nix-lint" { nativeBuildInputs = [ pkgs.nixpkgs-fmt pkgs.deadnix ]; } ''
    cd ${nixFiles}
    nixpkgs-fmt --check .
    deadnix --fail .
    touch $out
  '';
  # Roles that contradict each other fail with an assertion that says why.
  role-conflicts = import ./role-conflicts.nix { inherit self pkgs lib; };
  # The scheduled export has no network with SQLite or a socket, and reaches a remote PostgreSQL.
  backup-network = import ./backup-network.nix { inherit self pkgs lib; };
  # ai-deploy's NVIDIA driver on a single-GPU server and an NVSwitch box: open module as asked, fabric manager
  # only with NVSwitch.
  nvidia = import ./nvidia.nix { inherit self pkgs lib; };
}

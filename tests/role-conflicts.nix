# Roles compose, and a contradiction fails with an assertion that says why. Evaluates host configurations and
# checks their failed assertions; builds nothing.
# - a box with data-processing and research-workstation whose workstation registry is explicitly asked to use
#   SQLite;
# - an ai-deploy host without a GPU (nvidia.enable = false) whose inference is still asked to require one.
{ self, pkgs, lib }:
let
  evalHost = import ./eval-host.nix { inherit self pkgs lib; };
  failedAssertions = roles:
    map (a: a.message) (lib.filter (a: !a.assertion) (evalHost [{ endoreg.roles = roles; }]).assertions);
  says = failed: words: lib.any (m: lib.all (w: lib.hasInfix w m) words) failed;

  registryDatabase = failedAssertions {
    data-processing.enable = true;
    research-workstation = {
      enable = true;
      registryDatabase = "sqlite";
    };
  };
  gpuWithoutGpu = failedAssertions {
    ai-deploy = {
      enable = true;
      nvidia.enable = false;
      inference.requireGpu = true;
    };
  };
in
assert lib.assertMsg (says registryDatabase [ "data-processing" "research-workstation" "registryDatabase" "PostgreSQL" ])
  "role-conflicts: expected an assertion naming both roles and registryDatabase, got: ${builtins.toJSON registryDatabase}";
assert lib.assertMsg (says gpuWithoutGpu [ "ai-deploy" "nvidia.enable = false" "requireGpu" ])
  "role-conflicts: expected an assertion naming nvidia.enable and requireGpu, got: ${builtins.toJSON gpuWithoutGpu}";
pkgs.runCommand "endoreg-role-conflicts" { } ''
  echo "the contradictions are reported: ${lib.escapeShellArg (lib.concatStringsSep "; " (registryDatabase ++ gpuWithoutGpu))}" > $out
''

# Roles compose, and a contradiction fails with an assertion that says why: a box with data-processing and
# research-workstation whose workstation registry is explicitly asked to use SQLite. Evaluates a host
# configuration and checks its failed assertions; builds nothing.
{ self, pkgs, lib }:
let
  host = lib.nixosSystem {
    modules = [
      self.nixosModules.default
      {
        nixpkgs.hostPlatform = pkgs.stdenv.hostPlatform.system;
        networking.hostName = "conflicted";
        system.stateVersion = "26.05";
        endoreg.roles.data-processing.enable = true;
        endoreg.roles.research-workstation = {
          enable = true;
          registryDatabase = "sqlite";
        };
      }
    ];
  };
  failed = map (a: a.message) (lib.filter (a: !a.assertion) host.config.assertions);
  says = words: lib.any (m: lib.all (w: lib.hasInfix w m) words) failed;
in
assert lib.assertMsg (says [ "data-processing" "research-workstation" "registryDatabase" "PostgreSQL" ])
  "role-conflicts: expected an assertion naming both roles and registryDatabase, got: ${builtins.toJSON failed}";
pkgs.runCommand "endoreg-role-conflicts" { } ''
  echo "the contradiction is reported: ${lib.escapeShellArg (lib.concatStringsSep "; " failed)}" > $out
''

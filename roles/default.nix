# The roles a host can take, listed by name in hosts/inventory.nix. Roles compose: one box may take all
# three. Where two roles would make different choices for the same thing, the role that needs it more wins
# by priority (data-processing's PostgreSQL over the workstation's SQLite default), and an explicit choice
# that contradicts another role fails with an assertion that names both and says what to change.
#
# The secrets each role needs are data in ../secrets/roles.nix, read both here (one assertion per needed
# secret of an enabled role) and by `endoreg secrets check` (without nixpkgs, before a deployment).
{ config, lib, ... }:
let
  host = config.networking.hostName;
  files = config.endoreg.secrets.files;

  # A role setting named by `when` in ../secrets/roles.nix, as this host configured it.
  setting = role: when: lib.attrByPath (lib.splitString "." when) null config.endoreg.roles.${role};
  needed = role: s:
    let
      v = setting role s.when;
    in
    s.when == null || v == true || (builtins.isInt v && v > 0);

  assertionsOf = role: secrets:
    lib.optionals config.endoreg.roles.${role}.enable (lib.mapAttrsToList
      (name: s:
        let
          v = setting role s.when;
          option = "endoreg.roles.${role}.${s.when}";
        in
        {
          assertion = needed role s -> files ? ${name};
          message = ''
            ${host} takes the role ${role}, which needs the secret ${name} (${s.for})${lib.optionalString (s.when != null) " because ${option} = ${builtins.toJSON v}"}:
            add it to the `secrets` of ${host} in hosts/inventory.nix and create secrets/${host}/${name}.age (cd secrets && agenix -e ${host}/${name}.age)${
              lib.optionalString (s.when != null) ", or set ${option} = ${if builtins.isBool v then "false" else "0"}"}.
          '';
        })
      secrets);
in
{
  imports = [
    ./data-processing.nix
    ./ai-deploy.nix
    ./research-workstation.nix
  ];

  assertions = lib.concatLists (lib.mapAttrsToList assertionsOf (import ../secrets/roles.nix));
}

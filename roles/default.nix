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
  roles = config.endoreg.roles;
  registry = config.services.endoreg.registry;

  # The inference service runs where a role asks for it: ai-deploy (on the GPU, or on the CPU with
  # nvidia.enable = false; ./ai-deploy.nix) or research-workstation (on the CPU). One service per host,
  # whichever role asks.
  inference = lib.any (r: roles.${r}.enable && roles.${r}.inference.enable) [ "ai-deploy" "research-workstation" ];

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

  config = lib.mkMerge [
    {
      assertions = lib.concatLists (lib.mapAttrsToList assertionsOf (import ../secrets/roles.nix));
    }

    # The inference service with its token from the host secret inference-token (an assertion above says so
    # when it is missing), registered by the registry when the registry runs here.
    (lib.mkIf (inference && files ? inference-token) {
      services.endoreg.inference = {
        enable = true;
        tokenFile = files.inference-token.path;
      };
      services.endoreg.registry.tokenFiles = lib.mkIf registry.enable [
        {
          name = "inference";
          role = "service";
          file = files.inference-token.path;
        }
      ];
      systemd.services = lib.genAttrs ([ "endoreg-inference" ] ++ lib.optional registry.enable "endoreg-registry") (_: {
        restartTriggers = [ files.inference-token.file ];
        requires = [ "endoreg-secrets.service" ];
        after = [ "endoreg-secrets.service" ];
      });
    })
  ];
}

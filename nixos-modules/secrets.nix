# Secrets: age-encrypted files in the repository (secrets/<host>/<name>.age, recipients in
# secrets/secrets.nix), decrypted at activation by agenix with the host's SSH key.
#
# - The identity is the host key on the persistent volume when the host is impermanent: agenix runs during
#   activation, before any bind mount exists (see ./impermanence.nix).
# - Decrypted secrets are root-only files under /run/agenix; services receive them with systemd's
#   LoadCredential, never as world-readable paths or in the Nix store.
# - endoreg-secrets.service checks, after activation, that every declared secret was decrypted, and says
#   which key is missing from which recipient list when one was not. Services that use a secret require it,
#   so a host that cannot read its secrets fails with that message instead of a vague credential error.
# - A service restarts when its secret changes: the consumer adds the encrypted file to its unit's
#   restartTriggers (the path under /run/agenix stays the same when the content changes).
{ agenix }:
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.endoreg.secrets;
  imp = config.endoreg.impermanence;

  identity =
    if imp.enable
    then "${imp.persistentStoragePath}/etc/ssh/ssh_host_ed25519_key"
    else "/etc/ssh/ssh_host_ed25519_key";

  check = pkgs.writeShellScript "endoreg-secrets-check" ''
    missing=0
    ${lib.concatMapStrings (s: ''
      if [ ! -s ${lib.escapeShellArg s.path} ]; then
        missing=1
        echo "endoreg-secrets: ${s.name} was not decrypted (${s.path} is missing or empty)." >&2
        echo "  Its encrypted file is ${s.source}; this host decrypts with ${identity}." >&2
      fi
    '') (lib.attrValues cfg.files)}
    if [ "$missing" -ne 0 ]; then
      if [ -r ${identity} ]; then
        echo "  This host's public key is: $(${pkgs.openssh}/bin/ssh-keygen -y -f ${identity})" >&2
        echo "  If it is not the hostKey of ${config.networking.hostName} in hosts/inventory.nix, put it there and" >&2
        echo "  re-encrypt the host's secrets (cd secrets && agenix --rekey); see docs/operations.md, key rotation." >&2
      else
        echo "  ${identity} does not exist: was the host key generated before the first boot? (docs/operations.md, first install)" >&2
      fi
      exit 1
    fi
    echo "endoreg-secrets: all ${toString (lib.length (lib.attrNames cfg.files))} secret(s) decrypted"
  '';
in
{
  imports = [
    agenix.nixosModules.default
    ./state.nix
  ];

  options.endoreg.secrets = {
    files = mkOption {
      default = { };
      description = ''
        The age-encrypted secrets of this host. The hosts built from hosts/inventory.nix get one entry per
        name in the host's `secrets` list, read from secrets/<host>/<name>.age.
      '';
      type = types.attrsOf (
        types.submodule (
          { name, config, ... }:
          {
            options = {
              name = mkOption {
                type = types.str;
                default = name;
                readOnly = true;
                description = "The secret's name (the attribute name).";
              };
              file = mkOption {
                type = types.path;
                description = "The age-encrypted file in the repository.";
              };
              source = mkOption {
                type = types.str;
                default = "${name}.age";
                defaultText = lib.literalExpression ''"''${name}.age"'';
                description = "Where the encrypted file is in the repository, for error messages.";
              };
              path = mkOption {
                type = types.str;
                readOnly = true;
                default = "/run/agenix/${config.name}";
                description = "Where the decrypted secret appears (root-only).";
              };
            };
          }
        )
      );
    };
  };

  config = lib.mkIf (cfg.files != { }) {
    assertions = lib.mapAttrsToList
      (name: s: {
        assertion = builtins.pathExists s.file;
        message = "endoreg.secrets.files.${name}: ${s.source} does not exist. Create it with `cd secrets && agenix -e ${lib.removePrefix "secrets/" s.source}` (recipients come from secrets/secrets.nix).";
      })
      cfg.files;

    age.identityPaths = [ identity ];
    age.secrets = lib.mapAttrs
      (_: s: {
        inherit (s) file;
        path = s.path;
        mode = "0400";
        owner = "root";
        group = "root";
      })
      cfg.files;

    systemd.services.endoreg-secrets = {
      description = "Check that this host's endoreg secrets were decrypted";
      wantedBy = [ "multi-user.target" ];
      # re-run after a switch that changed a secret
      restartTriggers = lib.mapAttrsToList (_: s: s.file) cfg.files;
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = check;
        # reads only root-owned files; no network, no writes
        PrivateNetwork = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        NoNewPrivileges = true;
      };
    };
  };
}

# The data-processing server: the registry on PostgreSQL, media workers, daily exports of the database,
# optionally an encrypted off-site copy of those exports and of the storage that cannot be recreated
# (restic), and monitoring.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.endoreg.roles.data-processing;
  registry = config.services.endoreg.registry;
  # The secrets this role needs are asserted from ../secrets/roles.nix (roles/default.nix); here they are used.
  secrets = config.endoreg.secrets.files;

  # Local media storage, relative to the registry's data directory unless absolute (crates/common storage).
  storage = registry.settings.storage or { };
  localStorage = (storage.backend or "local") == "local";
  storageRoot =
    let
      root = storage.root or "storage";
    in
    if lib.hasPrefix "/" root then root else "/var/lib/private/endoreg/${root}";
in
{
  options.endoreg.roles.data-processing = {
    enable = lib.mkEnableOption "the data-processing role: the registry on PostgreSQL, backups of the database and critical storage, monitoring";

    exposeRegistry = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Whether the registry's API listens on all addresses with its port open in the firewall (for
        workstations and GPU hosts in the same network), rather than on loopback only. Put a TLS-terminating
        proxy in front of it before it is reached over networks you do not control.
      '';
    };

    mediaWorkers = mkOption {
      type = types.ints.unsigned;
      default = 1;
      description = ''
        Number of media workers on this host (0: none). They authenticate with the host secret `media-token`
        (role `service`), which the registry registers at startup.
      '';
    };

    offsiteBackup = {
      enable = lib.mkEnableOption ''
        an encrypted off-site copy (restic) of the database exports, the key raw uploads are encrypted to,
        and local media storage. Needs the host secrets `restic-repository` (the repository URL) and
        `restic-password`, and optionally `restic-environment` (e.g. S3 credentials)
      '';
      startAt = mkOption {
        type = types.str;
        default = "*-*-* 03:30:00";
        description = "When to copy (after the database export).";
      };
    };
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    {
      services.endoreg.registry = {
        enable = true;
        database.type = "postgresql";
        backup.enable = lib.mkDefault true;
        # all IPv6 and IPv4 addresses (dual-stack socket)
        listenAddress = lib.mkIf cfg.exposeRegistry (lib.mkDefault "::");
        openFirewall = lib.mkDefault cfg.exposeRegistry;
      };
      endoreg.monitoring.enable = lib.mkDefault true;
    }

    # The API token provisioned from the host's age secret (secrets/<host>/registry-admin-token.age).
    (lib.mkIf (secrets ? registry-admin-token) {
      services.endoreg.registry.tokenFiles = [
        {
          name = "admin";
          role = "admin";
          file = secrets.registry-admin-token.path;
        }
      ];
      systemd.services.endoreg-registry = {
        restartTriggers = [ secrets.registry-admin-token.file ];
        requires = [ "endoreg-secrets.service" ];
        after = [ "endoreg-secrets.service" ];
      };
    })

    (lib.mkIf (cfg.mediaWorkers > 0 && secrets ? media-token) {
      services.endoreg.registry.tokenFiles = [
        {
          name = "media";
          role = "service";
          file = secrets.media-token.path;
        }
      ];
      services.endoreg.media = {
        enable = true;
        workers = cfg.mediaWorkers;
        tokenFile = secrets.media-token.path;
      };
      systemd.services = lib.genAttrs ([ "endoreg-registry" ] ++ map (i: "endoreg-media-${toString i}") (lib.range 1 cfg.mediaWorkers)) (_: {
        restartTriggers = [ secrets.media-token.file ];
        requires = [ "endoreg-secrets.service" ];
        after = [ "endoreg-secrets.service" ];
      });
    })

    (lib.mkIf cfg.offsiteBackup.enable {
      assertions = [
        {
          assertion = registry.backup.enable;
          message = "endoreg.roles.data-processing.offsiteBackup copies the database exports: keep services.endoreg.registry.backup.enable on.";
        }
      ];
      services.restic.backups.endoreg = {
        initialize = true;
        repositoryFile = secrets.restic-repository.path or null;
        passwordFile = secrets.restic-password.path or "/run/agenix/restic-password";
        environmentFile = secrets.restic-environment.path or null;
        paths = [
          "/var/lib/private/endoreg-backup"
          # without this key no raw upload can ever be read again
          "/var/lib/private/endoreg/keys"
        ]
        ++ lib.optional localStorage storageRoot;
        timerConfig = {
          OnCalendar = cfg.offsiteBackup.startAt;
          Persistent = true;
          RandomizedDelaySec = "30min";
        };
        pruneOpts = [
          "--keep-daily 7"
          "--keep-weekly 5"
          "--keep-monthly 12"
        ];
      };
      systemd.services.restic-backups-endoreg = {
        requires = [ "endoreg-secrets.service" ];
        after = [ "endoreg-secrets.service" "endoreg-registry-backup.service" ];
      };
    })
  ]);
}

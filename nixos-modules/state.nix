# Declarations of what a module keeps across reboots. Every service module says here exactly which paths it
# persists; ./impermanence.nix turns the list into bind mounts from the persistent volume when the host is
# impermanent, and nothing happens on a host that is not. Imported (by path, so once) by every module that
# persists something, so that those modules work without the impermanence machinery.
{ lib, ... }:
let
  inherit (lib) mkOption types;

  directory = types.submodule {
    options = {
      directory = mkOption {
        type = types.str;
        example = "/var/lib/private/endoreg";
        description = "Absolute path of the directory to keep.";
      };
      user = mkOption {
        type = types.str;
        default = "root";
        description = "Owner of the directory when it is first created on the persistent volume.";
      };
      group = mkOption {
        type = types.str;
        default = "root";
        description = "Group of the directory when it is first created on the persistent volume.";
      };
      mode = mkOption {
        type = types.strMatching "[0-7]{3,4}";
        default = "0755";
        description = "Mode of the directory when it is first created on the persistent volume.";
      };
    };
  };
in
{
  options.endoreg = {
    impermanence = {
      enable = lib.mkEnableOption ''
        an impermanent root: `/` is a tmpfs, wiped at every boot, and only the paths declared in
        {option}`endoreg.persistence` survive, bind-mounted from
        {option}`endoreg.impermanence.persistentStoragePath`
      '';

      persistentStoragePath = mkOption {
        type = types.str;
        default = "/persist";
        description = ''
          Mount point of the persistent volume (a file system of its own, mounted in the initrd). The SSH
          host key lives directly on it, so that agenix can decrypt secrets before the bind mounts exist.
        '';
      };

      persistJournal = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Whether to keep the systemd journal across reboots. On a host that holds clinical data, the
          journal is the record of who accessed what; set this to `false` to keep logs in memory only.
        '';
      };
    };

    persistence = {
      directories = mkOption {
        type = types.listOf (types.coercedTo types.str (d: { directory = d; }) directory);
        default = [ ];
        example = [
          "/var/lib/postgresql"
          {
            directory = "/var/lib/private/endoreg";
            mode = "0700";
          }
        ];
        description = ''
          Directories the modules of this host keep across reboots. Each module adds exactly the
          directories it needs; nothing else on the root file system survives a reboot.
        '';
      };

      files = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "/etc/machine-id" ];
        description = "Single files kept across reboots.";
      };
    };
  };
}

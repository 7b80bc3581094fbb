# Disk layouts, chosen by name in hosts/inventory.nix (disk.layout). Used by disko to partition and format
# at the first install (nixos-anywhere) and to declare the file systems of the installed host.
#
# luks-btrfs: an EFI system partition, and one LUKS2 volume with btrfs subvolumes for /nix and /persist.
# The root is a tmpfs (endoreg.impermanence): everything that survives a reboot is on the encrypted volume.
# The passphrase is read from /tmp/disk.key while formatting only (nixos-anywhere --disk-encryption-keys);
# at boot the initrd asks for it (docs/operations.md: first install, unattended unlock).
disk:
let
  btrfsOptions = [ "compress=zstd" "noatime" ];

  layouts = {
    luks-btrfs = {
      disk.main = {
        type = "disk";
        inherit (disk) device;
        content = {
          type = "gpt";
          partitions = {
            ESP = {
              size = "1G";
              type = "EF00";
              content = {
                type = "filesystem";
                format = "vfat";
                mountpoint = "/boot";
                mountOptions = [ "umask=0077" ];
              };
            };
            crypted = {
              size = "100%";
              content = {
                type = "luks";
                name = "crypted";
                passwordFile = "/tmp/disk.key";
                settings.allowDiscards = true;
                content = {
                  type = "btrfs";
                  extraArgs = [ "-f" ];
                  subvolumes = {
                    "/nix" = {
                      mountpoint = "/nix";
                      mountOptions = btrfsOptions;
                    };
                    "/persist" = {
                      mountpoint = "/persist";
                      mountOptions = btrfsOptions;
                    };
                  };
                };
              };
            };
          };
        };
      };
      nodev."/" = {
        fsType = "tmpfs";
        mountOptions = [ "defaults" "size=${disk.rootSize or "2G"}" "mode=0755" ];
      };
    };
  };
in
{
  disko.devices =
    layouts.${disk.layout} or (throw "hosts/disko.nix: unknown disk layout `${disk.layout}`; layouts are ${builtins.concatStringsSep ", " (builtins.attrNames layouts)}.");
}

# What every VM test node shares: the endoreg modules and an impermanent root like the real hosts' (a tmpfs
# on /, the VM's disk as the persistent volume), with a TEST-ONLY host key placed on it before agenix runs,
# as the first install does on a real host (docs/operations.md).
{ self }:
{ config, lib, ... }:
let
  persist = config.endoreg.impermanence.persistentStoragePath;
in
{
  imports = [ self.nixosModules.default ];

  options.endoreg.test.hostKey = lib.mkOption {
    type = lib.types.nullOr lib.types.path;
    default = ../secrets/test/keys/TEST-ONLY-host-ed25519;
    description = ''
      TEST-ONLY private host key installed on the persistent volume at the first boot. It is copied into the
      Nix store, which is acceptable for a key that protects nothing and never for a real one.
    '';
  };

  config = {
    endoreg.impermanence.enable = true;

    # Like the administrators of a real host: an SSH key (here the TEST-ONLY host key's public half; nobody
    # logs in with it), no password (users are immutable).
    users.users.test-admin = {
      isNormalUser = true;
      extraGroups = [ "wheel" ];
      openssh.authorizedKeys.keys = [ (builtins.readFile ../secrets/test/keys/TEST-ONLY-host-ed25519.pub) ];
    };

    virtualisation = {
      memorySize = 2048;
      fileSystems = {
        "/" = lib.mkForce {
          device = "none";
          fsType = "tmpfs";
          options = [ "mode=0755" "size=1G" ];
          neededForBoot = true;
        };
        ${persist} = {
          device = "/dev/vda";
          fsType = "ext4";
          autoFormat = true;
          neededForBoot = true;
        };
      };
    };

    system.activationScripts = lib.mkMerge [
      (lib.mkIf (config.endoreg.test.hostKey != null) {
        endoregTestHostKey = {
          deps = [ "specialfs" ];
          text = ''
            if [ ! -s ${persist}/etc/ssh/ssh_host_ed25519_key ]; then
              install -D -m 0600 ${config.endoreg.test.hostKey} ${persist}/etc/ssh/ssh_host_ed25519_key
            fi
          '';
        };
      })
      # agenix decrypts during activation: the key must be there first
      (lib.mkIf (config.endoreg.test.hostKey != null && config.age.secrets != { }) {
        agenixInstall.deps = [ "endoregTestHostKey" ];
      })
    ];
  };
}

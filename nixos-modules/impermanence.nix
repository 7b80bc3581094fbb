# The impermanent root: `/` on tmpfs, state only where a module declared it (endoreg.persistence, see
# ./state.nix), bind-mounted by nix-community/impermanence from the persistent volume.
#
# What the framework itself keeps, and why, are the known traps of an impermanent NixOS host:
# - /var/lib/nixos: the uids and gids NixOS allocated; without it, users without a fixed uid get new ones
#   at the next boot and no longer own their files.
# - /etc/machine-id: the journal, DHCP client ids and systemd's per-machine state are keyed by it.
# - the SSH host key is not bind-mounted at all: sshd and agenix read it directly from the persistent volume,
#   because agenix decrypts secrets during activation, before the bind mounts exist.
# - /var/lib/private must be mode 0700 for systemd to accept DynamicUser state directories below it; a
#   persisted /var/lib/private/<name> would otherwise get a 0755 parent created by impermanence.
# - /var/lib/systemd/timers: the stamps of `Persistent=true` timers, so a backup missed while the host was
#   off runs after the next boot.
# - home directories below a persisted /home are created during activation, on the tmpfs, and hidden by
#   the bind mount; they are created again (systemd-tmpfiles) once the mounts exist.
{ impermanence }:
{ config, lib, ... }:
let
  cfg = config.endoreg.impermanence;
  persist = cfg.persistentStoragePath;
  hostKey = "${persist}/etc/ssh/ssh_host_ed25519_key";

  declared = config.endoreg.persistence;
  # DynamicUser state lives below /var/lib/private: does any module persist something there?
  usesPrivate = lib.any (d: lib.hasPrefix "/var/lib/private/" d.directory) declared.directories;

  # Home directories below a persisted directory (the workstation persists /home): NixOS creates them during
  # activation, on the tmpfs, before the bind mount hides them. Created again after the mounts instead.
  under = dir: path: lib.hasPrefix "${dir}/" path;
  persistedHomes = lib.filter
    (u: u.isNormalUser && u.createHome && lib.any (d: under d.directory u.home) declared.directories)
    (lib.attrValues config.users.users);
in
{
  imports = [
    impermanence.nixosModules.impermanence
    ./state.nix
  ];

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.hasPrefix "/" persist && persist != "/";
        message = "endoreg.impermanence.persistentStoragePath must be an absolute path other than /, got `${persist}`.";
      }
      {
        # A root that survives reboots would silently keep undeclared state; the host's disk layout
        # (hosts/disko.nix) mounts a tmpfs on /.
        assertion = !(config.fileSystems ? "/") || config.fileSystems."/".fsType == "tmpfs";
        message = ''
          endoreg.impermanence is enabled, but / is a `${config.fileSystems."/".fsType or "?"}` file system.
          An impermanent host needs fileSystems."/".fsType = "tmpfs" (the luks-btrfs layout in hosts/disko.nix
          provides it).
        '';
      }
      {
        assertion = lib.all (d: lib.hasPrefix "/" d.directory) declared.directories
          && lib.all (lib.hasPrefix "/") declared.files;
        message = "endoreg.persistence: every path must be absolute.";
      }
    ];

    # The persistent volume is mounted in the initrd: the host key and the persisted uid map are needed
    # during activation.
    fileSystems.${persist}.neededForBoot = true;

    # Users and passwords come from the configuration only: /etc/shadow does not survive a reboot anyway.
    users.mutableUsers = lib.mkDefault false;

    environment.persistence.${persist} = {
      hideMounts = true;
      directories =
        [
          {
            directory = "/var/lib/nixos";
            mode = "0755";
          }
          "/var/lib/systemd/timers"
        ]
        ++ lib.optional cfg.persistJournal "/var/log/journal"
        # the same directory declared alike by two modules (registry and media workers) is kept once
        ++ lib.unique (map (d: { inherit (d) directory user group mode; }) declared.directories);
      files = [ "/etc/machine-id" ] ++ lib.unique declared.files;
    };

    services.openssh.hostKeys = [
      {
        path = hostKey;
        type = "ed25519";
      }
    ];

    systemd.tmpfiles.rules = map (u: "d ${u.home} ${u.homeMode} ${u.name} ${if u.group != "" then u.group else "users"} - -") persistedHomes;

    # impermanence creates missing parents of a persisted directory with mode 0755; systemd refuses to use
    # DynamicUser state below a /var/lib/private that is not 0700. Runs after impermanence created the
    # directories, at every activation (boot and switch), and repairs both the volume and the tmpfs.
    system.activationScripts.endoregPrivateStateDir = lib.mkIf usesPrivate {
      deps = [ "createPersistentStorageDirs" ];
      text = ''
        install -d -m 0700 -o root -g root ${persist}/var/lib/private /var/lib/private
        chmod 0700 ${persist}/var/lib/private /var/lib/private
      '';
    };
  };
}

# The scheduled export (endoreg-registry-backup) has no network where the database is a file or a socket, and
# reaches a remote or TCP PostgreSQL like the server does. Evaluates host configurations; builds nothing.
{ self, pkgs, lib }:
let
  evalHost = import ./eval-host.nix { inherit self pkgs lib; };
  backupUnit = registry:
    let
      config = evalHost [{ services.endoreg.registry = { enable = true; backup.enable = true; } // registry; }];
      unit = config.systemd.services.endoreg-registry-backup;
    in
    {
      inherit (unit.serviceConfig) PrivateNetwork RestrictAddressFamilies;
      online = lib.elem "network-online.target" unit.after && lib.elem "network-online.target" unit.wants;
    };
  remote = url: {
    database = {
      type = "postgresql";
      createLocally = false;
      passwordFile = "/run/agenix/registry-database-password";
    };
    settings.database_url = url;
  };

  offline = {
    PrivateNetwork = true;
    RestrictAddressFamilies = [ "AF_UNIX" ];
    online = false;
  };
  online = {
    PrivateNetwork = false;
    RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
    online = true;
  };
  cases = {
    sqlite = { unit = backupUnit { }; expected = offline; };
    local-postgresql = { unit = backupUnit { database.type = "postgresql"; }; expected = offline; };
    socket-postgresql = { unit = backupUnit (remote "postgresql://%2Frun%2Fpostgresql/registry"); expected = offline; };
    remote-postgresql = { unit = backupUnit (remote "postgresql://registry@db.example.org:5432/registry?sslmode=verify-full"); expected = online; };
    tcp-localhost = { unit = backupUnit (remote "postgresql://registry@127.0.0.1/registry"); expected = online; };
  };
  wrong = lib.filterAttrs (_: c: c.unit != c.expected) cases;
in
assert lib.assertMsg (wrong == { })
  "backup-network: the backup unit's network is wrong for ${builtins.toJSON (lib.mapAttrs (_: c: { got = c.unit; inherit (c) expected; }) wrong)}";
pkgs.runCommand "endoreg-backup-network" { } ''
  echo "the backup unit's network fits its database: ${lib.concatStringsSep ", " (lib.attrNames cases)}" > $out
''

# A data-processing host boots: PostgreSQL is provisioned with peer authentication, the knowledge base is
# loaded, the API answers with the admin token provisioned from an age secret, the media worker starts with
# its own token from another secret, the units are hardened to an exposure of at most 2.0, the database is
# exported on schedule and the export restores into SQLite.
{ self }:
{
  name = "endoreg-registry";

  nodes.server = { pkgs, ... }: {
    imports = [ (import ./node.nix { inherit self; }) ];
    endoreg.roles.data-processing.enable = true;
    endoreg.secrets.files = {
      registry-admin-token = {
        file = ../secrets/test/registry-admin-token.age;
        source = "secrets/test/registry-admin-token.age";
      };
      media-token = {
        file = ../secrets/test/media-token.age;
        source = "secrets/test/media-token.age";
      };
    };
    environment.systemPackages = [ pkgs.jq pkgs.curl ];
  };

  testScript = ''
    import re

    api = "curl --fail --silent --show-error http://127.0.0.1:8080"
    auth = '-H "Authorization: Bearer $(cat /run/agenix/registry-admin-token)"'

    server.start()
    server.wait_for_unit("endoreg-registry.service")
    server.wait_for_open_port(8080)

    with subtest("PostgreSQL: the database exists and the service's role owns it"):
        server.succeed(
            "runuser -u postgres -- psql -tAc "
            "\"SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = 'endoreg'\" "
            "| grep -qx endoreg"
        )
        server.succeed(f"{api}/readyz | jq -e '.ready and .database == \"postgres\"'")

    with subtest("the knowledge base is loaded; the API answers with the token from the age secret"):
        server.succeed(f"{api}/api/v1/terminology {auth} | jq -e 'map(.count) | add > 0'")
        server.fail(f"{api}/api/v1/terminology")
        server.fail(f"{api}/api/v1/terminology -H 'Authorization: Bearer endoreg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'")

    with subtest("the decrypted secrets are readable by root only"):
        server.succeed("test \"$(stat -L -c %a:%U /run/agenix/registry-admin-token)\" = 400:root")
        server.succeed("test \"$(stat -L -c %a:%U /run/agenix/media-token)\" = 400:root")

    with subtest("the media worker runs with its token and polls the registry"):
        server.wait_for_unit("endoreg-media-1.service")
        server.wait_until_succeeds("journalctl -u endoreg-media-1.service | grep -q 'polling http://127.0.0.1:8080'")
        # the registry registered the workers' token (read access to terminology is every role's)
        server.succeed(f"{api}/api/v1/terminology -H \"Authorization: Bearer $(cat /run/agenix/media-token)\"")

    with subtest("the units' exposure is at most 2.0"):
        for unit in ["endoreg-registry.service", "endoreg-media-1.service"]:
            out = server.succeed(f"systemd-analyze security --no-pager {unit}")
            m = re.search(r"Overall exposure level for " + re.escape(unit) + r": ([0-9.]+)", out)
            assert m is not None and float(m.group(1)) <= 2.0, out

    with subtest("backup: the scheduled export runs and restores into a fresh SQLite registry"):
        server.succeed("systemctl list-timers endoreg-registry-backup.timer | grep -q endoreg-registry-backup")
        server.succeed("systemctl start endoreg-registry-backup.service")
        export = server.succeed("ls -1 /var/lib/endoreg-backup/registry-*.jsonl.gz").strip()
        server.succeed(
            "export ENDOREG_DATA_DIR=$(mktemp -d); "
            f"endoreg migrate && endoreg import {export} && endoreg token list | grep -w admin"
        )

    with subtest("endoreg-admin runs the CLI on the service's database"):
        server.succeed("endoreg-admin token list | grep -w admin")

    with subtest("SIGTERM stops the registry gracefully; it comes back"):
        server.succeed("systemctl stop endoreg-registry.service")
        server.succeed("journalctl -u endoreg-registry.service | grep -q 'registry stopped'")
        server.succeed("systemctl start endoreg-registry.service")
        server.wait_for_open_port(8080)
        server.succeed(f"{api}/api/v1/terminology {auth}")
  '';
}

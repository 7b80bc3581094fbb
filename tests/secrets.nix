# Two hosts with the same secret. The holder's key is a recipient: its registry reads the token through a
# systemd credential, and restarts when the secret changes (a specialisation with the rotated secret). The
# stranger's key is not: endoreg-secrets.service fails and says which key to add where, and the registry,
# which requires it, does not start.
{ self }:
let
  node = hostKey: { lib, pkgs, ... }: {
    imports = [ (import ./node.nix { inherit self; }) ];
    endoreg.test.hostKey = hostKey;
    # a lighter data-processing host: the test is about secrets, not PostgreSQL or media
    endoreg.roles.data-processing = {
      enable = true;
      mediaWorkers = 0;
    };
    services.endoreg.registry.database.type = lib.mkForce "sqlite";
    endoreg.secrets.files.registry-admin-token = {
      file = ../secrets/test/registry-admin-token.age;
      source = "secrets/test/registry-admin-token.age";
    };
    environment.systemPackages = [ pkgs.curl ];
  };
in
{
  name = "endoreg-secrets";

  nodes = {
    holder = { lib, ... }: {
      imports = [ (node ../secrets/test/keys/TEST-ONLY-host-ed25519) ];
      specialisation.rotated.configuration = {
        endoreg.secrets.files.registry-admin-token.file = lib.mkForce ../secrets/test/registry-admin-token-rotated.age;
      };
    };
    stranger = node ../secrets/test/keys/TEST-ONLY-stranger-host-ed25519;
  };

  testScript = { nodes, ... }: ''
    def api_with_secret(machine):
        machine.succeed(
            "curl --fail --silent --show-error -H \"Authorization: Bearer $(cat /run/agenix/registry-admin-token)\" "
            "http://127.0.0.1:8080/api/v1/terminology"
        )

    start_all()

    with subtest("the service reads its credential"):
        holder.wait_for_unit("endoreg-registry.service")
        holder.wait_for_open_port(8080)
        holder.succeed("systemctl is-active endoreg-secrets.service")
        api_with_secret(holder)
        # the service user cannot read the decrypted file itself, only its credential copy
        holder.succeed("test \"$(stat -L -c %a:%U /run/agenix/registry-admin-token)\" = 400:root")

    with subtest("the service restarts when its secret changes"):
        before = holder.succeed("systemctl show -P InvocationID endoreg-registry.service")
        holder.succeed("${nodes.holder.system.build.toplevel}/specialisation/rotated/bin/switch-to-configuration test")
        holder.wait_for_unit("endoreg-registry.service")
        holder.wait_for_open_port(8080)
        after = holder.succeed("systemctl show -P InvocationID endoreg-registry.service")
        assert before != after, "endoreg-registry.service was not restarted after its secret changed"
        api_with_secret(holder)

    with subtest("a host without the key fails clearly"):
        stranger.wait_for_unit("multi-user.target")
        stranger.wait_until_succeeds("systemctl is-failed endoreg-secrets.service")
        log = stranger.succeed("journalctl -u endoreg-secrets.service")
        assert "registry-admin-token was not decrypted" in log, log
        assert "hosts/inventory.nix" in log, log
        stranger.fail("systemctl is-active endoreg-registry.service")
        stranger.fail("test -e /run/agenix/registry-admin-token")
  '';
}

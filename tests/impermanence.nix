# Write, reboot, look: what the modules declared survives (the registry's SQLite database with a token made
# before the reboot, home directories, machine-id, the host key), nothing else does (files written to /etc,
# /var/lib, /root), and /var/lib/private keeps the mode systemd requires for DynamicUser state.
{ self }:
{
  name = "endoreg-impermanence";

  nodes.machine = { pkgs, ... }: {
    imports = [ (import ./node.nix { inherit self; }) ];
    endoreg.roles.research-workstation.enable = true;
    # a researcher with a home directory (persisted by the research-workstation role); never logged in
    users.users.researcher.isNormalUser = true;
    environment.systemPackages = [ pkgs.curl pkgs.openssh ];
  };

  testScript = { nodes, ... }:
    let
      persisted = nodes.machine.environment.persistence."/persist";
      declared = map (d: d.dirPath) persisted.directories ++ map (f: f.filePath) persisted.files;
    in
    ''
      import json

      declared = json.loads('${builtins.toJSON declared}')

      def api(token):
          return f"curl --fail --silent --show-error -H 'Authorization: Bearer {token}' http://127.0.0.1:8080/api/v1/terminology"

      machine.start()
      machine.wait_for_unit("endoreg-registry.service")
      machine.wait_for_open_port(8080)

      with subtest("write declared and undeclared state"):
          token = machine.succeed("endoreg-admin token create --role researcher --name impermanence-test").strip()
          machine.succeed(api(token))
          machine.succeed("runuser -u researcher -- sh -c 'echo notes > /home/researcher/notes'")
          machine.succeed("echo x > /etc/undeclared && mkdir -p /var/lib/undeclared && echo x > /var/lib/undeclared/file && echo x > /root/undeclared")
          machine_id = machine.succeed("cat /etc/machine-id")
          host_key = machine.succeed("ssh-keygen -y -f /persist/etc/ssh/ssh_host_ed25519_key")

      machine.shutdown()
      machine.start()
      machine.wait_for_unit("endoreg-registry.service")
      machine.wait_for_open_port(8080)

      with subtest("declared state survived the reboot"):
          machine.succeed(api(token))
          machine.succeed("grep -qx notes /home/researcher/notes")
          assert machine.succeed("cat /etc/machine-id") == machine_id
          assert machine.succeed("ssh-keygen -y -f /persist/etc/ssh/ssh_host_ed25519_key") == host_key
          machine.succeed("findmnt -n -o FSTYPE / | grep -qx tmpfs")

      with subtest("undeclared state is gone"):
          machine.fail("test -e /etc/undeclared")
          machine.fail("test -e /var/lib/undeclared")
          machine.fail("test -e /root/undeclared")

      with subtest("the persistent volume holds only what was declared (and the host key)"):
          kept = machine.succeed("cd /persist && find . -mindepth 1 -maxdepth 4 \\( -type d -o -type f \\) -printf '/%P\\n'").split()
          allowed = ["/etc/ssh", "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub", "/lost+found"]
          def is_declared(path):
              return any(path == d or path.startswith(d + "/") or d.startswith(path + "/") for d in declared + allowed)
          stray = [p for p in kept if not is_declared(p)]
          assert stray == [], f"undeclared paths on /persist: {stray}"

      with subtest("the traps: /var/lib/private is 0700 on the volume and on the tmpfs"):
          machine.succeed("test \"$(stat -c %a /var/lib/private)\" = 700")
          machine.succeed("test \"$(stat -c %a /persist/var/lib/private)\" = 700")
    '';
}

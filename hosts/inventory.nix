# The inventory: every host of this deployment, as plain data (no functions, no imports). hosts/default.nix
# builds nixosConfigurations.<host> from it; secrets/secrets.nix takes the recipients of every secret from it.
#
# Per host:
#   system        the Nix system
#   roles         any of "data-processing", "ai-deploy", "research-workstation" (roles/)
#   addresses     static addresses with prefix length on the host's wired interface; [ ] means DHCP
#   gateways      default gateways for the static addresses
#   hostKey       the host's SSH ed25519 public key: the identity its secrets are encrypted to. Generate the
#                 key pair before the first install (docs/operations.md, first install).
#   disk          the disk layout (hosts/disko.nix): layout name, target device, size of the root tmpfs
#   secrets       names of the host's secrets, each in secrets/<host>/<name>.age
#   stateVersion  the NixOS release the host was first installed with; never change it afterwards
#
# The hosts below are EXAMPLES: their addresses are documentation ranges (RFC 5737, RFC 3849) and their
# keys are example keys whose private halves were discarded, so their secrets (secrets/<host>/*.age) can be
# decrypted by nobody. Replace keys, addresses and devices with your own and re-create the secrets.
{
  # Administrators: SSH login with sudo on every host, and recipients of every host's secrets (so that an
  # administrator can edit and re-encrypt them). Written once here.
  admins = {
    alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILR9EofsWJMCKfTzFL4xA59jvXJmhXCfv1YCi6h6eSNh alice (example admin)";
  };

  network = {
    domain = "endoreg.example.org";
    nameservers = [ "192.0.2.1" "2001:db8:0:1::1" ];
  };

  hosts = {
    # The data-processing server: registry on PostgreSQL, media workers, backups, monitoring.
    proc1 = {
      system = "x86_64-linux";
      roles = [ "data-processing" ];
      addresses = [ "192.0.2.10/24" "2001:db8:0:1::10/64" ];
      gateways = [ "192.0.2.1" "2001:db8:0:1::1" ];
      hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM00ZtV1KIUnRZzmpgnPWDZYfHkIkdnEooK0gTEc5jfU root@proc1 (example)";
      disk = {
        layout = "luks-btrfs";
        device = "/dev/disk/by-id/nvme-EXAMPLE_proc1";
        rootSize = "4G";
      };
      secrets = [ "registry-admin-token" "media-token" "restic-repository" "restic-password" ];
      stateVersion = "26.05";
    };

    # A GPU host for inference (its inference service waits for shared storage: hosts/gpu1/default.nix).
    gpu1 = {
      system = "x86_64-linux";
      roles = [ "ai-deploy" ];
      addresses = [ "192.0.2.20/24" "2001:db8:0:1::20/64" ];
      gateways = [ "192.0.2.1" "2001:db8:0:1::1" ];
      hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdXfYfP59PgecAV8QfNBy/7Fqeqw0FBm60WrEzNYZcS root@gpu1 (example)";
      disk = {
        layout = "luks-btrfs";
        device = "/dev/disk/by-id/nvme-EXAMPLE_gpu1";
        rootSize = "8G";
      };
      secrets = [ ];
      stateVersion = "26.05";
    };

    # A research workstation with its own registry on SQLite; DHCP.
    ws1 = {
      system = "x86_64-linux";
      roles = [ "research-workstation" ];
      addresses = [ ];
      gateways = [ ];
      hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDD51GaY/fZkDihJq2Wa/1K0ROsVqoFFoCUrFky6xpXp root@ws1 (example)";
      disk = {
        layout = "luks-btrfs";
        device = "/dev/disk/by-id/nvme-EXAMPLE_ws1";
        rootSize = "4G";
      };
      secrets = [ ];
      stateVersion = "26.05";
    };

    # One box with all three roles (a small site): one registry, on PostgreSQL.
    allinone = {
      system = "x86_64-linux";
      roles = [ "data-processing" "ai-deploy" "research-workstation" ];
      addresses = [ "192.0.2.40/24" "2001:db8:0:1::40/64" ];
      gateways = [ "192.0.2.1" "2001:db8:0:1::1" ];
      hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxUeRUtpP0GtYEw3m0wtm+KWq/HdM4b7MtASqKZGUHn root@allinone (example)";
      disk = {
        layout = "luks-btrfs";
        device = "/dev/disk/by-id/nvme-EXAMPLE_allinone";
        rootSize = "8G";
      };
      secrets = [ "registry-admin-token" "media-token" "inference-token" ];
      stateVersion = "26.05";
    };
  };

  # TEST-ONLY. The identities of the VM tests (tests/), never of a real host: their private keys are
  # committed in secrets/test/keys/ so that the tests can decrypt secrets/test/*.age. Not built as hosts.
  test = {
    admins = {
      test-admin = "age1gfhwr0e35ktqwl9yr7stu3a796mwmw09t7nj6kvquvf83edyx9cqcc8ltj";
    };
    hosts = {
      test = {
        hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAaCV5i5SR3XhcB1kSu4L5rIcEcAlUpDCCuBYd0hx9Un TEST-ONLY endoreg VM-test host key (holder)";
        secrets = [
          "registry-admin-token"
          "registry-admin-token-rotated"
          "media-token"
          "inference-token"
          # the keys of the pipeline test's S3 storage (tests/pipeline.nix)
          "s3-access-key-id"
          "s3-secret-access-key"
        ];
      };
    };
  };
}

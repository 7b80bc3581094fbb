# The recipients of every secret, for the agenix CLI: run it in this directory, e.g.
#   agenix -e proc1/registry-admin-token.age     (create or edit; needs an administrator's private key)
#   agenix --rekey                                (re-encrypt everything after a key changed)
#
# Written from hosts/inventory.nix only: a host's secrets (secrets/<host>/<name>.age for each name in its
# `secrets` list) are encrypted to that host's key and to every administrator, and to nobody else. Nothing
# here is edited by hand; add a host, an administrator or a secret in the inventory.
let
  inventory = import ../hosts/inventory.nix;

  secretsOf = admins: hosts:
    builtins.listToAttrs (builtins.concatLists (builtins.attrValues (builtins.mapAttrs
      (host: h: map
        (secret: {
          name = "${host}/${secret}.age";
          value.publicKeys = [ h.hostKey ] ++ builtins.attrValues admins;
        })
        h.secrets)
      hosts)));
in
secretsOf inventory.admins inventory.hosts
  # TEST-ONLY: the VM tests' secrets (secrets/test/), encrypted to the committed test keys (secrets/test/keys/)
  // secretsOf inventory.test.admins inventory.test.hosts

# nixosConfigurations: one per host of ./inventory.nix. A host is the endoreg modules, its disk layout
# (./disko.nix), what every host shares (./common.nix), the roles and secrets the inventory names, and
# ./<host>/default.nix when the host needs more (hardware, role settings).
{ lib, self, disko }:
let
  inventory = import ./inventory.nix;
  knownRoles = [ "data-processing" "ai-deploy" "research-workstation" ];

  mkHost = name: host:
    let
      unknown = lib.subtractLists knownRoles host.roles;
    in
    if unknown != [ ] then
      throw "hosts/inventory.nix: ${name} has the unknown role(s) ${lib.concatStringsSep ", " unknown}; roles are ${lib.concatStringsSep ", " knownRoles}."
    else
      lib.nixosSystem {
        specialArgs = {
          endoregInventory = inventory;
          endoregHost = host // { inherit name; };
        };
        modules = [
          self.nixosModules.default
          disko.nixosModules.disko
          ./common.nix
          (import ./disko.nix host.disk)
          {
            networking.hostName = name;
            nixpkgs.hostPlatform = host.system;
            system.stateVersion = host.stateVersion;
            endoreg.roles = lib.genAttrs host.roles (_: {
              enable = true;
            });
            endoreg.secrets.files = lib.genAttrs host.secrets (secret: {
              file = ../secrets + "/${name}/${secret}.age";
              source = "secrets/${name}/${secret}.age";
            });
          }
        ]
        ++ lib.optional (builtins.pathExists (./. + "/${name}/default.nix")) (./. + "/${name}");
      };
in
lib.mapAttrs mkHost inventory.hosts

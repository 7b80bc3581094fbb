# The configuration of a host made of the endoreg modules and `modules`, evaluated, not built: for checks of
# what the modules derive from their options (tests/*.nix), without a VM.
{ self, pkgs, lib }:
modules:
(lib.nixosSystem {
  modules = [
    self.nixosModules.default
    {
      nixpkgs.hostPlatform = pkgs.stdenv.hostPlatform.system;
      networking.hostName = "checked";
      system.stateVersion = "26.05";
    }
  ]
  ++ modules;
}).config

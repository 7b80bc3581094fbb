# What every host of the inventory shares: impermanent root, boot, network from the inventory, the
# administrators' SSH access, Nix settings for deployments with `nixos-rebuild --target-host`.
{ lib, endoregInventory, endoregHost, ... }:
let
  static = endoregHost.addresses != [ ];
in
{
  endoreg.impermanence.enable = true;

  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;
  # systemd in the initrd: LUKS unlock and the persistent volume are mounted by systemd units
  boot.initrd.systemd.enable = true;
  # common storage and USB controllers; a host with other hardware adds its modules in hosts/<host>/
  boot.initrd.availableKernelModules = [ "nvme" "ahci" "xhci_pci" "usbhid" "usb_storage" "sd_mod" ];
  hardware.enableRedistributableFirmware = lib.mkDefault true;

  networking = {
    inherit (endoregInventory.network) domain;
    useNetworkd = true;
    useDHCP = false;
    firewall.enable = true;
  };
  systemd.network.networks."10-wired" = {
    matchConfig.Name = "en* eth*";
    address = endoregHost.addresses;
    gateway = endoregHost.gateways;
    dns = lib.optionals static endoregInventory.network.nameservers;
    networkConfig = {
      DHCP = if static then "no" else "yes";
      IPv6AcceptRA = !static;
    };
    linkConfig.RequiredForOnline = "routable";
  };

  # Administrators log in with their SSH key and use sudo; there are no passwords (users are immutable,
  # see endoreg.impermanence), so sudo does not ask for one.
  users.users = lib.mapAttrs
    (_: key: {
      isNormalUser = true;
      extraGroups = [ "wheel" ];
      openssh.authorizedKeys.keys = [ key ];
    })
    endoregInventory.admins;
  security.sudo = {
    wheelNeedsPassword = false;
    execWheelOnly = true;
  };

  services.openssh = {
    enable = true;
    settings = {
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      PermitRootLogin = "no";
    };
  };

  nix.settings = {
    experimental-features = [ "nix-command" "flakes" ];
    # administrators copy system closures to the host (nixos-rebuild --target-host ... --sudo)
    trusted-users = [ "@wheel" ];
  };
  nix.channel.enable = false;

  time.timeZone = lib.mkDefault "UTC";
}

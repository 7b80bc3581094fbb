# The host secrets each role needs, as plain data (no functions, no nixpkgs), in one place: the roles assert
# from it that a host has them (roles/default.nix), and `endoreg secrets check` evaluates it with
# hosts/inventory.nix (nix-instantiate, no nixpkgs) to find a host that lacks one before anything is deployed.
# (It lives here rather than in roles/ because every roles/*.nix is a NixOS module.)
#
# Per role, per secret (a name in the host's `secrets` list in hosts/inventory.nix, encrypted in
# secrets/<host>/<name>.age):
#   for       what the secret is, for messages
#   when      null: the role always needs it. Otherwise the role setting that makes it needed, relative to
#             endoreg.roles.<role> (needed while that setting is true, or a number above 0).
#   default   whether it is needed with that setting's default. `endoreg secrets check` reads a host's setting
#             from hosts/<host>/default.nix when that file is plain data (no function); otherwise it assumes
#             the default. The NixOS evaluation (the role's assertion) always sees the real setting.
# A secret a role can use but does not need (restic-environment) is not listed.
{
  data-processing = {
    registry-admin-token = {
      for = "the registry's token `admin` (role admin), registered at every start";
      when = null;
    };
    media-token = {
      for = "the media workers' token `media` (role service), registered by the registry at every start";
      when = "mediaWorkers";
      default = true;
    };
    restic-repository = {
      for = "the restic repository of the off-site copy";
      when = "offsiteBackup.enable";
      default = false;
    };
    restic-password = {
      for = "the key of the off-site copy's restic repository";
      when = "offsiteBackup.enable";
      default = false;
    };
  };
  ai-deploy = {
    inference-token = {
      for = "the inference service's token `inference` (role service), registered by the registry at every start where it runs on the host";
      when = "inference.enable";
      default = true;
    };
  };
  research-workstation = {
    inference-token = {
      for = "the inference service's token `inference` (role service), registered by the registry at every start";
      when = "inference.enable";
      default = false;
    };
  };
}

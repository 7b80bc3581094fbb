# The NixOS modules of endoreg, one per service or concern, and `default` with all of them. Every module is
# inert until enabled, so importing `default` changes nothing by itself.
#
# The modules that need flake inputs or the flake's packages are closures over them; each gets a `key`, so
# importing it twice (directly and through another module) declares its options once.
{ agenix
, impermanence
, packagesFor
}:
let
  keyed = name: imports: {
    key = "endoreg/nixos-modules/${name}";
    inherit imports;
  };

  # Root on tmpfs, /persist, and the framework's answers to the known traps.
  impermanenceModule = keyed "impermanence" [ (import ./impermanence.nix { inherit impermanence; }) ];
  # agenix with the host key as identity, and a clear failure when a secret cannot be decrypted.
  secrets = keyed "secrets" [ (import ./secrets.nix { inherit agenix; }) ];
  # services.endoreg.registry: the server, its PostgreSQL database, backups, endoreg-admin.
  registry = keyed "registry" [ (import ./registry.nix { inherit packagesFor; }) ];
  # services.endoreg.media: media workers taking jobs from a registry.
  media = keyed "media" [ (import ./media.nix { inherit packagesFor; }) ];
  # services.endoreg.inference: the inference service (ONNX Runtime, CPU or CUDA) taking prediction jobs.
  inference = keyed "inference" [ (import ./inference.nix { inherit packagesFor; }) ];
  # Exporters for the host, PostgreSQL and the GPUs.
  monitoring = keyed "monitoring" [ ./monitoring.nix ];
  # endoreg.roles.{data-processing,ai-deploy,research-workstation}, with the modules they configure.
  roles = keyed "roles" [ ../roles impermanenceModule secrets registry media inference monitoring ];
in
{
  impermanence = impermanenceModule;
  inherit secrets registry media inference monitoring roles;
  default = keyed "default" [ impermanenceModule secrets registry media inference monitoring roles ];
}

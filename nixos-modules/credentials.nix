# Secret files beyond a service's own (e.g. the keys of S3 storage), handed to it as systemd credentials
# under names its settings refer to: the `credentialFiles` option every endoreg service module declares,
# what its unit loads, and the checks. `service` is the module's option path ("services.endoreg.media").
{ lib }:
{
  # `readers`: who gets the files, in words.
  option = { service, readers }: lib.mkOption {
    type = lib.types.attrsOf lib.types.str;
    default = { };
    example = {
      s3-access-key-id = "/run/agenix/s3-access-key-id";
      s3-secret-access-key = "/run/agenix/s3-secret-access-key";
    };
    description = ''
      More secret files, handed to ${readers} as systemd credentials under the given names (the files need
      not be readable by the service user). A key of {option}`${service}.settings` that names a secret file
      takes the name, a path relative to the credentials directory, e.g.
      `settings.storage.access_key_id_file = "s3-access-key-id"` for S3 storage.
    '';
  };

  # LoadCredential entries.
  load = files: lib.mapAttrsToList (name: file: "${name}:${file}") files;

  # Every file an age secret outside the Nix store; every name a credential name that `taken` (the
  # service's own credentials, described by `takenText`) does not claim.
  assertions = { service, files, taken, takenText }: [
    {
      assertion = lib.all (f: lib.hasPrefix "/" f && !(lib.hasPrefix builtins.storeDir f)) (lib.attrValues files);
      message = "${service}.credentialFiles: every file must be an absolute path outside the Nix store (an age secret); a secret in the store is readable by everyone.";
    }
    {
      assertion = lib.all (n: builtins.match "[A-Za-z0-9_.-]+" n != null && !(taken n)) (lib.attrNames files);
      message = "${service}.credentialFiles: names are credential names (letters, digits, `_.-`); ${takenText}.";
    }
  ];
}

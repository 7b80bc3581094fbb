# gpu1, a GPU host without a registry of its own. Its inference service would serve proc1's registry, but it
# reads the anonymised videos from the registry's storage, and proc1 keeps that storage on its local disk.
# Once proc1's storage is shared (S3: services.endoreg.registry and .media on proc1 get the same
# settings.storage and credentialFiles as below, with proc1's own S3 key secrets), turn it on: add the secret
# inference-token to gpu1 in hosts/inventory.nix (a token of role service that proc1's registry knows:
# docs/operations.md, the inference service), the S3 keys as secrets too, and set here
#   endoreg.roles.ai-deploy.inference.enable = true;   # the default
#   services.endoreg.inference = {
#     settings.registry_url = "http://192.0.2.10:8080";
#     settings.storage = { backend = "s3"; bucket = ...; endpoint = ...; region = ...;
#       access_key_id_file = "s3-access-key-id"; secret_access_key_file = "s3-secret-access-key"; };
#     credentialFiles = { s3-access-key-id = "/run/agenix/s3-access-key-id"; s3-secret-access-key = ...; };
#   };
# tests/pipeline.nix runs this arrangement (with nvidia.enable = false, as its VMs have no GPU).
{
  endoreg.roles.ai-deploy.inference.enable = false;
}

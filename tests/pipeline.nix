# The whole pipeline across two hosts, as on a site with a data-processing server and a GPU host. Node `proc`
# takes the data-processing role (the registry on PostgreSQL, a media worker) and runs the S3 server (Garage,
# nixpkgs' services.garage, its bucket and key set up by a unit of the test) that holds the media; node `gpu` takes the ai-deploy role without a GPU (VMs have none: nvidia.enable = false,
# no NVIDIA driver, the inference service on the CPU) and reaches proc's registry and bucket over the test
# network. Every token and the S3 keys come from TEST-ONLY age secrets; the services get the keys as systemd
# credentials (credentialFiles). A synthetic endoscopy video is uploaded to proc's registry with curl; proc's
# media worker anonymises it and extracts its frames, gpu's inference service predicts it with the demo model;
# the video ends `predicted`, with the demo video's `outside` phase as a predicted segment, gpu's metrics count
# the frames, and the anonymised video and the probabilities are objects in the shared bucket. Then the model
# rule of docs/operations.md on gpu: a changed ONNX file under a version the registry knows stops the service
# for good (exit status 78, no restart loop); a new version starts.
{ self }:
let
  # The demo model with a changed ONNX file (another producer string: the same model, other bytes), under the
  # sidecar's version or a new one.
  changedModel = pkgs: package: version:
    pkgs.runCommand "endoreg-demo-model-changed-${version}" { } ''
      models=${package}/share/endoreg/models
      mkdir $out
      sed 's/make_demo_model\.py/make_demo_model.pz/' $models/endoreg-demo-multilabel.onnx > $out/endoreg-demo-multilabel.onnx
      if cmp -s $models/endoreg-demo-multilabel.onnx $out/endoreg-demo-multilabel.onnx; then
        echo "the demo model no longer names make_demo_model.py: change tests/pipeline.nix to alter it otherwise" >&2
        exit 1
      fi
      sed 's/^version = .*/version = "${version}"/' $models/endoreg-demo-multilabel.toml > $out/endoreg-demo-multilabel.toml
      grep -qx 'version = "${version}"' $out/endoreg-demo-multilabel.toml
    '';

  # A TEST-ONLY secret of secrets/test/.
  testSecret = name: {
    file = ../secrets/test + "/${name}.age";
    source = "secrets/test/${name}.age";
  };

  # The bucket every service uses, and the storage settings that reach it at `endpoint`: the registry's raw
  # uploads and the media worker's products on proc, the inference service's probabilities on gpu. Where
  # Garage differs from AWS for our client: requests are signed for Garage's own region (`s3_region`, not
  # us-east-1), and a bucket is addressed by path (the client's default with an endpoint; Garage serves
  # virtual-hosted buckets only under a configured root domain). The rest the client uses (multipart
  # uploads, CopyObject for the move out of staging, ListObjectsV2, HEAD, DELETE) Garage implements; it has
  # no ACLs, versioning or object lock, which the client does not use.
  bucket = "endoreg";
  region = "garage";
  s3Port = 3900;
  s3Storage = endpoint: {
    backend = "s3";
    inherit bucket endpoint region;
    # plain HTTP on the test network; a site puts TLS in front of an S3 service reached between hosts
    allow_http = true;
    # credentials of the units, from credentialFiles below
    access_key_id_file = "s3-access-key-id";
    secret_access_key_file = "s3-secret-access-key";
  };
  s3Credentials = secrets: {
    s3-access-key-id = secrets.s3-access-key-id.path;
    s3-secret-access-key = secrets.s3-secret-access-key.path;
  };
in
{
  name = "endoreg-pipeline";

  nodes.proc = { config, lib, pkgs, ... }:
    let
      secrets = config.endoreg.secrets.files;
      # `endoreg-test-s3 METHOD PATH [REGION]`: one request to the S3 server, signed (AWS signature version 4)
      # with the TEST-ONLY keys for REGION (Garage's by default); prints the answer, fails on an error status.
      # Garage refuses a request without x-amz-content-sha256, which curl adds itself only in newer versions.
      s3 = pkgs.writeShellScriptBin "endoreg-test-s3" ''
        set -euo pipefail
        printf 'user = "%s:%s"\n' "$(cat ${secrets.s3-access-key-id.path})" "$(cat ${secrets.s3-secret-access-key.path})" \
          | ${pkgs.curl}/bin/curl --config - --fail --silent --show-error \
              --aws-sigv4 "aws:amz:''${3:-${region}}:s3" --header "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
              --request "$1" "http://127.0.0.1:${toString s3Port}$2"
      '';
      garage = config.services.garage.package;
    in
    {
      imports = [ (import ./node.nix { inherit self; }) ];
      endoreg.roles.data-processing = {
        enable = true;
        # the registry on all addresses with its port open: gpu reaches it
        exposeRegistry = true;
      };
      endoreg.secrets.files = lib.genAttrs
        [ "registry-admin-token" "media-token" "inference-token" "s3-access-key-id" "s3-secret-access-key" ]
        testSecret;

      # gpu's token. docs/operations.md: for a registry on another host, create a token there and put it in the
      # GPU host's secret inference-token; here the registry registers the same TEST-ONLY secret instead.
      services.endoreg.registry.tokenFiles = [
        {
          name = "inference-gpu";
          role = "service";
          file = secrets.inference-token.path;
        }
      ];

      services.endoreg.registry = {
        settings.storage = s3Storage "http://127.0.0.1:${toString s3Port}";
        credentialFiles = s3Credentials secrets;
      };
      services.endoreg.media = {
        settings.storage = s3Storage "http://127.0.0.1:${toString s3Port}";
        settings.anonymise.preset = "ultrafast";
        credentialFiles = s3Credentials secrets;
      };

      # The S3 server: Garage, one node. Its RPC secret is TEST-ONLY and in the Nix store (a real node reads
      # it from a secret file, rpc_secret_file).
      services.garage = {
        enable = true;
        package = pkgs.garage_2;
        settings = {
          replication_factor = 1;
          rpc_bind_addr = "127.0.0.1:3901";
          rpc_public_addr = "127.0.0.1:3901";
          rpc_secret = "5c1915fa04d0b6739675c61bf5907eb0fe3d9c69850c83820f51b4d25d13868c";
          s3_api = {
            s3_region = region;
            api_bind_addr = "[::]:${toString s3Port}";
          };
        };
      };
      # the objects on the disk, not in the memory of the tmpfs root
      endoreg.persistence.directories = [
        {
          directory = "/var/lib/private/garage";
          mode = "0700";
        }
      ];
      # gpu reads and writes the bucket
      networking.firewall.allowedTCPPorts = [ s3Port ];

      # The bucket and the services' key, declared: Garage has no configuration for them, so this unit makes
      # them with its CLI (which reads /etc/garage.toml) before the registry and the media worker start. The
      # node takes its role in the cluster layout first; the TEST-ONLY key is imported (the secrets hold an
      # id and a secret in Garage's format, GK and 24 hex digits, 64 hex digits) and may read and write the
      # bucket.
      systemd.services.endoreg-test-bucket = {
        description = "Create the S3 bucket and key of the endoreg services in Garage";
        requires = [ "garage.service" "endoreg-secrets.service" ];
        after = [ "garage.service" "endoreg-secrets.service" ];
        requiredBy = [ "endoreg-registry.service" "endoreg-media-1.service" ];
        before = [ "endoreg-registry.service" "endoreg-media-1.service" ];
        path = [ garage pkgs.coreutils ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        script = ''
          set -euo pipefail
          # the node answers once its RPC is up
          for _ in $(seq 60); do garage status > /dev/null 2>&1 && break; sleep 1; done
          # the bucket is made last: when it exists, everything is done (a later boot)
          if ! garage bucket info ${bucket} > /dev/null 2>&1; then
            garage layout assign -z dc1 -c 1G "$(garage node id -q | cut -d@ -f1)"
            garage layout apply --version 1
            key_id="$(cat ${secrets.s3-access-key-id.path})"
            garage key import --yes -n endoreg-test "$key_id" "$(cat ${secrets.s3-secret-access-key.path})"
            garage bucket create ${bucket}
            garage bucket allow --read --write --owner ${bucket} --key "$key_id"
          fi
        '';
      };

      # PostgreSQL, the registry, x264 and Garage side by side
      virtualisation.memorySize = lib.mkForce 3072;
      virtualisation.cores = 2;
      virtualisation.diskSize = 4096;
      environment.systemPackages = [ pkgs.jq pkgs.curl config.services.endoreg.media.package s3 ];
    };

  nodes.gpu = { config, lib, pkgs, ... }:
    let
      secrets = config.endoreg.secrets.files;
    in
    {
      imports = [ (import ./node.nix { inherit self; }) ];
      endoreg.roles.ai-deploy = {
        enable = true;
        # no GPU in a VM: no NVIDIA driver, the inference service on the CPU (nixpkgs' CPU onnxruntime)
        nvidia.enable = false;
        inference.requireGpu = false;
      };
      endoreg.secrets.files = lib.genAttrs [ "inference-token" "s3-access-key-id" "s3-secret-access-key" ] testSecret;

      services.endoreg.inference = {
        settings = {
          registry_url = "http://proc:8080";
          storage = s3Storage "http://proc:${toString s3Port}";
          poll_secs = 1;
        };
        credentialFiles = s3Credentials secrets;
      };

      specialisation = {
        changed-file.configuration = {
          services.endoreg.inference.model = lib.mkForce "${changedModel pkgs config.services.endoreg.inference.package "demo-1"}/endoreg-demo-multilabel.onnx";
        };
        new-version.configuration = {
          services.endoreg.inference.model = lib.mkForce "${changedModel pkgs config.services.endoreg.inference.package "demo-2"}/endoreg-demo-multilabel.onnx";
        };
      };

      virtualisation.cores = 2;
      environment.systemPackages = [ pkgs.jq pkgs.curl ];
    };

  testScript = { nodes, ... }:
    let
      toplevel = nodes.gpu.system.build.toplevel;
      inference = nodes.gpu.services.endoreg.inference;
    in
    # what nvidia.enable = false promises, checked where the configuration is made
    assert !inference.gpu && inference.settings.runtime.execution_provider == "cpu" && !inference.settings.runtime.require_gpu;
    assert !nodes.gpu.hardware.nvidia.datacenter.enable && !nodes.gpu.services.prometheus.exporters.nvidia-gpu.enable;
    assert !(nodes.gpu.nixpkgs.config ? allowUnfreePredicate);
    ''
      import json
      import re

      bucket = "${bucket}"
      # on proc: the registry with the admin token
      api = "curl --fail --silent --show-error http://127.0.0.1:8080"
      auth = '-H "Authorization: Bearer $(cat /run/agenix/registry-admin-token)"'
      # on gpu: the inference service, proc's registry over the test network, gpu's own token
      inference = "curl --fail --silent --show-error http://127.0.0.1:8091"
      registry = "curl --fail --silent --show-error http://proc:8080"
      gpu_auth = '-H "Authorization: Bearer $(cat /run/agenix/inference-token)"'

      def metric(name):
          text = gpu.succeed(f"{inference}/metrics")
          m = re.search(r"^" + re.escape(name) + r" ([0-9.e+]+)$", text, re.MULTILINE)
          assert m is not None, f"{name} is not in the metrics:\n{text}"
          return float(m.group(1))

      start_all()

      with subtest("proc: Garage holds the bucket and the services' key; the registry and the media worker use it"):
          proc.wait_for_unit("garage.service")
          proc.wait_for_unit("endoreg-test-bucket.service")
          # signed with the TEST-ONLY key for Garage's region; refused unsigned, and signed for AWS's default
          # region, the one the client would use unless told
          proc.succeed(f"endoreg-test-s3 GET /{bucket}")
          proc.fail(f"curl --fail --silent http://127.0.0.1:${toString s3Port}/{bucket}")
          proc.fail(f"endoreg-test-s3 GET /{bucket} us-east-1")
          proc.wait_for_unit("endoreg-registry.service")
          proc.wait_for_unit("endoreg-media-1.service")
          proc.wait_for_open_port(8080)

      with subtest("gpu: the inference service runs on the CPU and registers its model with proc's registry"):
          gpu.wait_for_unit("endoreg-inference.service")
          gpu.wait_for_open_port(8091)
          gpu.succeed(f"{inference}/healthz | grep -qx ok")
          gpu.succeed(f"{inference}/metrics | grep -q 'endoreg_inference_model_info{{.*provider=\"cpu\".*}} 1'")
          gpu.succeed(f"{inference}/api/v1/model {gpu_auth} | jq -e '.version == \"demo-1\" and (.labels | index(\"outside\"))'")
          gpu.fail(f"{inference}/api/v1/model")
          gpu.succeed(f"{registry}/api/v1/ai-model-versions {gpu_auth} | jq -e 'map(.version) | index(\"demo-1\")'")
          # no NVIDIA driver on a host without a GPU
          gpu.fail("systemctl cat nvidia-persistenced.service")
          # proc's registry knows gpu's token under the name it was registered with
          proc.succeed("endoreg-admin token list | grep -w inference-gpu")

      with subtest("a video uploaded to proc is processed there and predicted on gpu"):
          # the synthetic video (outside the body for its first 15 %, fake patient data in the overlays) in
          # the layout of the registry's processor, read with the media worker's token
          proc.succeed(
              "cd /tmp && ENDOREG_REGISTRY_URL=http://127.0.0.1:8080 ENDOREG_TOKEN_FILE=/run/agenix/media-token "
              "endoreg-media demo-video /tmp/demo.mp4 --processor olympus_cv_1500 --width 480 --height 270 --seconds 4"
          )
          upload = json.loads(proc.succeed(
              f"{api}/api/v1/uploads {auth} "
              "-F 'metadata={\"center\":\"demo_center\",\"processor\":\"olympus_cv_1500\"};type=application/json' "
              "-F file=@/tmp/demo.mp4"
          ))
          video = upload["video"]["id"]
          proc.wait_until_succeeds(
              f"{api}/api/v1/videos/{video} {auth} | jq -e '.state == \"predicted\"'", timeout=900
          )

      with subtest("the video's segments hold the predicted `outside` phase; gpu counted the frames"):
          segments = json.loads(proc.succeed(f"{api}/api/v1/videos/{video}/segments {auth}"))
          outside = [s for s in segments if s["label"] == "outside" and s["source"] == "prediction"]
          assert outside, f"no predicted `outside` segment: {segments}"
          assert outside[0]["start_frame"] <= 2 and outside[0]["model_version_id"] is not None, outside
          assert metric("endoreg_inference_frames_total") > 0
          assert metric("endoreg_inference_decoded_frames_total") > 0

      with subtest("the anonymised video and the probabilities are objects in the shared bucket, not in local storage"):
          listing = proc.succeed(f"endoreg-test-s3 GET '/{bucket}?prefix=anonymised'")
          assert re.search(r"<Key>anonymised/[0-9a-f]{2}/[0-9a-f]{64}\.mp4</Key>", listing), listing
          listing = proc.succeed(f"endoreg-test-s3 GET '/{bucket}?prefix=predictions'")
          assert re.search(r"<Key>predictions/[0-9a-f]{2}/[0-9a-f]{64}/[0-9]+\.eprb</Key>", listing), listing
          for machine in [proc, gpu]:
              machine.fail("test -e /var/lib/private/endoreg/storage")

      with subtest("the inference unit's exposure is at most 2.0"):
          out = gpu.succeed("systemd-analyze security --no-pager endoreg-inference.service")
          m = re.search(r"Overall exposure level for endoreg-inference\.service: ([0-9.]+)", out)
          assert m is not None and float(m.group(1)) <= 2.0, out

      with subtest("a changed model file under a known version stops the service without a restart loop"):
          # the unit fails to start, so the switch reports a failure
          gpu.execute("${toplevel}/specialisation/changed-file/bin/switch-to-configuration test")
          gpu.wait_until_succeeds("systemctl is-failed endoreg-inference.service")
          gpu.succeed("test \"$(systemctl show -P ExecMainStatus endoreg-inference.service)\" = 78")
          gpu.succeed("journalctl -u endoreg-inference.service | grep -q 'give a changed model a new version'")
          gpu.sleep(15)
          gpu.succeed("systemctl is-failed endoreg-inference.service")

      with subtest("the changed model under a new version starts and is registered beside the old one"):
          gpu.execute("${toplevel}/specialisation/new-version/bin/switch-to-configuration test")
          # (a deployment restarts the changed unit; started here in any case, from its failed state)
          gpu.succeed("systemctl restart endoreg-inference.service")
          gpu.wait_for_unit("endoreg-inference.service")
          gpu.wait_for_open_port(8091)
          gpu.succeed(f"{inference}/api/v1/model {gpu_auth} | jq -e '.version == \"demo-2\"'")
          proc.succeed(f"{api}/api/v1/ai-model-versions {auth} | jq -e 'map(.version) | index(\"demo-1\") and index(\"demo-2\")'")
    '';
}

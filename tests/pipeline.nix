# The whole pipeline on one host, as on a small site's box: the registry (PostgreSQL) and a media worker from
# the data-processing role, the inference service on the CPU from the research-workstation role, each with
# its token from an age secret. A synthetic endoscopy video is uploaded with curl; the media worker
# anonymises it and extracts its frames, the inference service predicts it with the demo model; the video
# ends `predicted`, with the demo video's `outside` phase as a predicted segment, and the service's metrics
# count the frames. Then the model rule of docs/operations.md: a changed ONNX file under a version the
# registry knows stops the service for good (exit status 78, no restart loop); a new version starts.
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
in
{
  name = "endoreg-pipeline";

  nodes.server = { config, lib, pkgs, ... }: {
    imports = [ (import ./node.nix { inherit self; }) ];
    endoreg.roles.data-processing.enable = true;
    endoreg.roles.research-workstation = {
      enable = true;
      inference.enable = true;
      # the test is about the pipeline, not the data-science toolchain
      python = pkgs.python3;
    };
    endoreg.secrets.files = {
      registry-admin-token = {
        file = ../secrets/test/registry-admin-token.age;
        source = "secrets/test/registry-admin-token.age";
      };
      media-token = {
        file = ../secrets/test/media-token.age;
        source = "secrets/test/media-token.age";
      };
      inference-token = {
        file = ../secrets/test/inference-token.age;
        source = "secrets/test/inference-token.age";
      };
    };
    services.endoreg.media.settings.anonymise.preset = "ultrafast";
    services.endoreg.inference.settings.poll_secs = 1;

    specialisation = {
      changed-file.configuration = {
        services.endoreg.inference.model = lib.mkForce "${changedModel pkgs config.services.endoreg.inference.package "demo-1"}/endoreg-demo-multilabel.onnx";
      };
      new-version.configuration = {
        services.endoreg.inference.model = lib.mkForce "${changedModel pkgs config.services.endoreg.inference.package "demo-2"}/endoreg-demo-multilabel.onnx";
      };
    };

    # PostgreSQL, the registry, x264 and ONNX Runtime side by side
    virtualisation.memorySize = lib.mkForce 3072;
    virtualisation.cores = 2;
    environment.systemPackages = [ pkgs.jq pkgs.curl config.services.endoreg.media.package ];
  };

  testScript = { nodes, ... }:
    let
      toplevel = nodes.server.system.build.toplevel;
    in
    ''
      import json
      import re

      api = "curl --fail --silent --show-error http://127.0.0.1:8080"
      auth = '-H "Authorization: Bearer $(cat /run/agenix/registry-admin-token)"'
      inference = "curl --fail --silent --show-error http://127.0.0.1:8091"

      def metric(name):
          text = server.succeed(f"{inference}/metrics")
          m = re.search(r"^" + re.escape(name) + r" ([0-9.e+]+)$", text, re.MULTILINE)
          assert m is not None, f"{name} is not in the metrics:\n{text}"
          return float(m.group(1))

      server.start()

      with subtest("the inference service registers its model and serves health, metrics and the model"):
          server.wait_for_unit("endoreg-registry.service")
          server.wait_for_unit("endoreg-media-1.service")
          server.wait_for_unit("endoreg-inference.service")
          server.wait_for_open_port(8091)
          server.succeed(f"{inference}/healthz | grep -qx ok")
          server.succeed(f"{inference}/metrics | grep -q 'endoreg_inference_model_info{{.*provider=\"cpu\".*}} 1'")
          server.succeed(f"{inference}/api/v1/model {auth} | jq -e '.version == \"demo-1\" and (.labels | index(\"outside\"))'")
          server.fail(f"{inference}/api/v1/model")
          server.succeed(f"{api}/api/v1/ai-model-versions {auth} | jq -e 'map(.version) | index(\"demo-1\")'")

      with subtest("an uploaded video is processed and predicted"):
          # the synthetic video (outside the body for its first 15 %, fake patient data in the overlays) in
          # the layout of the registry's processor, read with the media worker's token
          server.succeed(
              "cd /tmp && ENDOREG_REGISTRY_URL=http://127.0.0.1:8080 ENDOREG_TOKEN_FILE=/run/agenix/media-token "
              "endoreg-media demo-video /tmp/demo.mp4 --processor olympus_cv_1500 --width 480 --height 270 --seconds 4"
          )
          upload = json.loads(server.succeed(
              f"{api}/api/v1/uploads {auth} "
              "-F 'metadata={\"center\":\"demo_center\",\"processor\":\"olympus_cv_1500\"};type=application/json' "
              "-F file=@/tmp/demo.mp4"
          ))
          video = upload["video"]["id"]
          server.wait_until_succeeds(
              f"{api}/api/v1/videos/{video} {auth} | jq -e '.state == \"predicted\"'", timeout=900
          )

      with subtest("the video's segments hold the predicted `outside` phase"):
          segments = json.loads(server.succeed(f"{api}/api/v1/videos/{video}/segments {auth}"))
          outside = [s for s in segments if s["label"] == "outside" and s["source"] == "prediction"]
          assert outside, f"no predicted `outside` segment: {segments}"
          assert outside[0]["start_frame"] <= 2 and outside[0]["model_version_id"] is not None, outside
          assert metric("endoreg_inference_frames_total") > 0
          assert metric("endoreg_inference_decoded_frames_total") > 0

      with subtest("the unit's exposure is at most 2.0"):
          out = server.succeed("systemd-analyze security --no-pager endoreg-inference.service")
          m = re.search(r"Overall exposure level for endoreg-inference\.service: ([0-9.]+)", out)
          assert m is not None and float(m.group(1)) <= 2.0, out

      with subtest("a changed model file under a known version stops the service without a restart loop"):
          # the unit fails to start, so the switch reports a failure
          server.execute("${toplevel}/specialisation/changed-file/bin/switch-to-configuration test")
          server.wait_until_succeeds("systemctl is-failed endoreg-inference.service")
          server.succeed("test \"$(systemctl show -P ExecMainStatus endoreg-inference.service)\" = 78")
          server.succeed("journalctl -u endoreg-inference.service | grep -q 'give a changed model a new version'")
          server.sleep(15)
          server.succeed("systemctl is-failed endoreg-inference.service")

      with subtest("the changed model under a new version starts and is registered beside the old one"):
          server.execute("${toplevel}/specialisation/new-version/bin/switch-to-configuration test")
          # (a deployment restarts the changed unit; started here in any case, from its failed state)
          server.succeed("systemctl restart endoreg-inference.service")
          server.wait_for_unit("endoreg-inference.service")
          server.wait_for_open_port(8091)
          server.succeed(f"{inference}/api/v1/model {auth} | jq -e '.version == \"demo-2\"'")
          server.succeed(f"{api}/api/v1/ai-model-versions {auth} | jq -e 'map(.version) | index(\"demo-1\") and index(\"demo-2\")'")
    '';
}

# The ai-deploy role's NVIDIA driver on a single-GPU server and on an NVSwitch box: the driver through
# nvidia.nix's standard path (the open kernel module as asked, persistenced), never its datacenter path (the
# proprietary module whatever `open` says, and a fabric manager that fails without NVSwitch); the fabric
# manager of the driver's own version only where NVSwitch is. Evaluates host configurations; builds nothing.
{ self, pkgs, lib }:
let
  evalHost = import ./eval-host.nix { inherit self pkgs lib; };
  gpuHost = role: evalHost [{ endoreg.roles.ai-deploy = { enable = true; inference.enable = false; } // role; }];
  failed = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  # what a configuration asks of nvidia.nix and systemd
  driver = config:
    let
      nvidia = config.hardware.nvidia;
      fabricManager = config.systemd.services.nvidia-fabricmanager or null;
    in
    {
      standardPath = lib.elem "nvidia" config.services.xserver.videoDrivers && !nvidia.datacenter.enable;
      # (the offline evaluation knows no default driver; NixOS' would be nvidiaPackages.stable or .dc)
      package = let p = builtins.tryEval nvidia.package.name; in if p.success then p.value else null;
      inherit (nvidia) open nvidiaPersistenced;
      fabricManager = fabricManager != null && lib.elem "multi-user.target" fabricManager.wantedBy
        && lib.hasInfix "nv-fabricmanager -c" fabricManager.serviceConfig.ExecStart;
      failed = failed config;
    };
  dc = (evalHost [ ]).boot.kernelPackages.nvidiaPackages.dc.name;
  production = (evalHost [ ]).boot.kernelPackages.nvidiaPackages.production.name;

  cases = {
    single-gpu = {
      got = driver (gpuHost { });
      expected = { standardPath = true; package = dc; open = true; nvidiaPersistenced = true; fabricManager = false; failed = [ ]; };
    };
    single-gpu-proprietary-module = {
      got = driver (gpuHost { openKernelModule = false; driver = "production"; });
      expected = { standardPath = true; package = production; open = false; nvidiaPersistenced = true; fabricManager = false; failed = [ ]; };
    };
    nvswitch = {
      got = driver (gpuHost { nvswitch = true; });
      expected = { standardPath = true; package = dc; open = true; nvidiaPersistenced = true; fabricManager = true; failed = [ ]; };
    };
    nvswitch-proprietary-module = {
      got = driver (gpuHost { nvswitch = true; openKernelModule = false; });
      expected = { standardPath = true; package = dc; open = false; nvidiaPersistenced = true; fabricManager = true; failed = [ ]; };
    };
  };
  wrong = lib.filterAttrs (_: c: c.got != c.expected) cases;

  # the regular driver has no fabric manager: refused with a reason
  nvswitchProduction = failed (gpuHost { nvswitch = true; driver = "production"; });
  # on an NVSwitch box, CUDA waits for the fabric
  inference = (evalHost [{ endoreg.roles.ai-deploy = { enable = true; nvswitch = true; }; endoreg.secrets.files.inference-token.file = ../secrets/test/inference-token.age; }]).systemd.services.endoreg-inference;
in
assert lib.assertMsg (wrong == { }) "nvidia: ${builtins.toJSON wrong}";
assert lib.assertMsg (lib.any (m: lib.hasInfix "nvswitch needs driver = \"datacenter\"" m) nvswitchProduction)
  "nvidia: nvswitch with the production driver should fail with a reason, got ${builtins.toJSON nvswitchProduction}";
assert lib.assertMsg (lib.elem "nvidia-fabricmanager.service" inference.after && lib.elem "nvidia-fabricmanager.service" inference.wants)
  "nvidia: the inference service does not wait for the fabric manager";
pkgs.runCommand "endoreg-nvidia" { } ''
  echo "NVIDIA driver as asked: ${lib.concatStringsSep ", " (lib.attrNames cases)}" > $out
''

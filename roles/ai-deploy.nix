# A GPU host for inference: the NVIDIA driver, CUDA user space for the services, a GPU exporter, and the
# inference service on the GPU (services.endoreg.inference with a CUDA build of onnxruntime). Its token is the
# host secret inference-token (roles/default.nix wires it, also for the workstation's CPU inference).
#
# With nvidia.enable = false the same role is a CPU-only inference host (and what the VM tests use, which
# have no GPU): no driver, no unfree packages, the inference service on the CPU.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.endoreg.roles.ai-deploy;
  monitoring = config.endoreg.monitoring;

  # The driver and CUDA are unfree; allow exactly those.
  unfree = pkg:
    let
      name = lib.getName pkg;
    in
    lib.hasPrefix "nvidia-" name || lib.hasPrefix "cuda" name || lib.hasPrefix "libcu" name
    || lib.elem name [ "fabricmanager" "libnpp" "libnvjitlink" "cudnn" "nccl" "tensorrt" ];
in
{
  options.endoreg.roles.ai-deploy = {
    enable = lib.mkEnableOption "the ai-deploy role: NVIDIA driver, CUDA user space and a GPU exporter for inference services";

    nvidia.enable = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether the host has NVIDIA GPUs: the NVIDIA driver, CUDA user space, the GPU exporter, and the
        inference service on the GPU (CUDA build of ONNX Runtime). Turn it off for an inference host without
        a GPU, and in VM tests: no driver and no unfree package is built, and the inference service runs on
        the CPU (nixpkgs' CPU build of ONNX Runtime, `execution_provider = "cpu"`).
      '';
    };

    driver = mkOption {
      type = types.enum [ "datacenter" "production" ];
      default = "datacenter";
      description = ''
        `datacenter`: NVIDIA's data-center driver (A100, H100, L40 and similar; with nvidia-fabricmanager
        on NVSwitch systems; no display). `production`: the regular driver (workstation and consumer GPUs).
      '';
    };

    openKernelModule = mkOption {
      type = types.bool;
      default = true;
      description = "Whether to use NVIDIA's open kernel module (supported from Turing on, required from Blackwell on).";
    };

    inference = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Whether to run the inference service (on the GPU, or on the CPU without
          {option}`endoreg.roles.ai-deploy.nvidia.enable`). It needs the host secret `inference-token` (a
          token of role `service`), and the registry: on this host (the registry registers the token), or on
          another host, whose URL and shared (S3) storage go in services.endoreg.inference.settings and which
          must know the token (docs/operations.md, the inference service).
        '';
      };

      requireGpu = mkOption {
        type = types.bool;
        default = cfg.nvidia.enable;
        defaultText = lib.literalExpression "config.endoreg.roles.ai-deploy.nvidia.enable";
        description = ''
          Whether the inference service fails at start (and stays stopped: `systemctl status
          endoreg-inference` says why) when CUDA cannot be used, e.g. after a driver update until the reboot,
          instead of running the model on the CPU at a fraction of the speed. Needs
          {option}`endoreg.roles.ai-deploy.nvidia.enable`.
        '';
      };
    };
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    {
      assertions = [
        {
          assertion = cfg.inference.enable && cfg.inference.requireGpu -> cfg.nvidia.enable;
          message = ''
            ${config.networking.hostName} takes the role ai-deploy with endoreg.roles.ai-deploy.nvidia.enable = false
            (no GPU), and endoreg.roles.ai-deploy.inference.requireGpu = true: the inference service could never
            start. Set inference.requireGpu = false (it runs on the CPU), or nvidia.enable = true on a host with a GPU.
          '';
        }
      ];

      # Enabled with its token in roles/default.nix; here where it runs.
      services.endoreg.inference = lib.mkIf cfg.inference.enable {
        gpu = cfg.nvidia.enable;
        settings.runtime.require_gpu = cfg.inference.requireGpu;
      };

      endoreg.monitoring.enable = lib.mkDefault true;
    }

    (lib.mkIf cfg.nvidia.enable {
      nixpkgs.config.allowUnfreePredicate = unfree;

      hardware.graphics.enable = true;
      hardware.nvidia = {
        open = cfg.openKernelModule;
        datacenter.enable = cfg.driver == "datacenter";
        # keeps the GPUs initialised between jobs (no seconds-long start per process)
        nvidiaPersistenced = true;
        nvidiaSettings = false;
      };
      services.xserver.videoDrivers = lib.mkIf (cfg.driver == "production") [ "nvidia" ];

      environment.systemPackages = [ pkgs.nvtopPackages.nvidia ];

      services.endoreg.inference = lib.mkIf cfg.inference.enable {
        onnxruntimePackage = lib.mkDefault (pkgs.onnxruntime.override { cudaSupport = true; });
        settings.runtime.execution_provider = lib.mkDefault "cuda";
      };

      # Newer than the option list in ../shared/nix: allowed, with the reason, in tests/check-options.py.
      services.prometheus.exporters.nvidia-gpu = lib.mkIf monitoring.enable {
        enable = true;
        inherit (monitoring) listenAddress openFirewall;
      };
    })
  ]);
}

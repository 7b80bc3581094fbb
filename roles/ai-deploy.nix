# A GPU host for inference: the NVIDIA driver, CUDA user space for the services, a GPU exporter. The
# inference service (with a CUDA build of onnxruntime) joins this role when its service module exists.
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
  };

  config = lib.mkIf cfg.enable {
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

    endoreg.monitoring.enable = lib.mkDefault true;
    # Newer than the option list in ../shared/nix: allowed, with the reason, in tests/check-options.py.
    services.prometheus.exporters.nvidia-gpu = lib.mkIf monitoring.enable {
      enable = true;
      inherit (monitoring) listenAddress openFirewall;
    };
  };
}

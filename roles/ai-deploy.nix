# A GPU host for inference: the NVIDIA driver, CUDA user space for the services, a GPU exporter, and the
# inference service on the GPU (services.endoreg.inference with a CUDA build of onnxruntime). Its token is the
# host secret inference-token (roles/default.nix wires it, also for the workstation's CPU inference).
#
# The driver suits a single-GPU (or PCIe multi-GPU) server and, with nvswitch = true, an NVSwitch box (HGX/DGX),
# where the fabric manager runs too; the open kernel module is used as openKernelModule says on both.
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

  driverPackage = config.boot.kernelPackages.nvidiaPackages.${if cfg.driver == "datacenter" then "dc" else "production"};

  # NVIDIA's defaults (the fabric manager's own configuration file), but logging to syslog, i.e. the journal.
  fabricManagerConfig = pkgs.writeText "fabricmanager.cfg" (lib.generators.toKeyValue { } {
    LOG_LEVEL = 4;
    LOG_FILE_NAME = "/var/log/fabricmanager.log";
    LOG_USE_SYSLOG = 1;
    DAEMONIZE = 1;
    BIND_INTERFACE_IP = "127.0.0.1";
    STARTING_TCP_PORT = 16000;
    FABRIC_MODE = 0;
    FABRIC_MODE_RESTART = 0;
    STATE_FILE_NAME = "/var/tmp/fabricmanager.state";
    FM_CMD_BIND_INTERFACE = "127.0.0.1";
    FM_CMD_PORT_NUMBER = 6666;
    FM_STAY_RESIDENT_ON_FAILURES = 0;
    ACCESS_LINK_FAILURE_MODE = 0;
    TRUNK_LINK_FAILURE_MODE = 0;
    NVSWITCH_FAILURE_MODE = 0;
    ABORT_CUDA_JOBS_ON_FM_EXIT = 1;
    TOPOLOGY_FILE_PATH = "${driverPackage.fabricmanager}/share/nvidia-fabricmanager/nvidia/nvswitch";
    DATABASE_PATH = "${driverPackage.fabricmanager}/share/nvidia-fabricmanager/nvidia/nvswitch";
  });
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
        Which NVIDIA driver branch: `datacenter`, NVIDIA's data-center driver (A100, H100, L40 and similar;
        nixpkgs' `nvidiaPackages.dc`, which comes with the fabric manager an NVSwitch box needs), or
        `production`, the regular driver (`nvidiaPackages.production`, workstation and consumer GPUs). Either
        runs headless: no X server, no nvidia-settings.
      '';
    };

    nvswitch = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Whether the GPUs are joined by NVSwitch (HGX and DGX boards: 4 or 8 SXM GPUs on one NVLink fabric).
        Such a box needs NVIDIA's fabric manager running before CUDA can use its GPUs; on any other server the
        fabric manager finds no NVSwitch and fails at boot, so it runs only where this is set. Needs
        `driver = "datacenter"` (the fabric manager must match the driver's version exactly).
      '';
    };

    openKernelModule = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether to use NVIDIA's open kernel module (supported from Turing on, required from Blackwell on; the
        proprietary one for older GPUs). Honoured on every server, NVSwitch boxes included.
      '';
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
      assertions = [
        {
          assertion = cfg.nvswitch -> cfg.driver == "datacenter";
          message = ''
            ${config.networking.hostName}: endoreg.roles.ai-deploy.nvswitch needs driver = "datacenter": only NVIDIA's
            data-center driver comes with the fabric manager of its own version, which an NVSwitch box needs.
          '';
        }
        {
          assertion = cfg.openKernelModule -> driverPackage.open or null != null;
          message = ''
            ${config.networking.hostName}: endoreg.roles.ai-deploy.openKernelModule is set, but the ${cfg.driver} driver
            of this nixpkgs (${driverPackage.name or "?"}) has no open kernel module: set openKernelModule = false.
          '';
        }
      ];

      nixpkgs.config.allowUnfreePredicate = unfree;

      hardware.graphics.enable = true;
      # The driver through nvidia.nix's standard path (the "nvidia" video driver; the X server stays off):
      # that path installs the kernel module `open` asks for, the GSP firmware and nvidia-persistenced.
      # Its datacenter path (hardware.nvidia.datacenter.enable) is not used: it installs the proprietary
      # module whatever `open` says and starts the fabric manager on every host, which fails at boot
      # without NVSwitch. The fabric manager of NVSwitch boxes is the unit below.
      services.xserver.videoDrivers = [ "nvidia" ];
      hardware.nvidia = {
        package = driverPackage;
        open = cfg.openKernelModule;
        # keeps the GPUs initialised between jobs (no seconds-long start per process)
        nvidiaPersistenced = true;
        nvidiaSettings = false;
      };

      environment.systemPackages = [ pkgs.nvtopPackages.nvidia ];

      services.endoreg.inference = lib.mkIf cfg.inference.enable {
        onnxruntimePackage = lib.mkDefault (pkgs.onnxruntime.override { cudaSupport = true; });
        settings.runtime.execution_provider = lib.mkDefault "cuda";
      };
      # CUDA starts once the GPUs are up: persistenced, and on NVSwitch boxes the fabric
      systemd.services.endoreg-inference = lib.mkIf cfg.inference.enable {
        wants = [ "nvidia-persistenced.service" ] ++ lib.optional cfg.nvswitch "nvidia-fabricmanager.service";
        after = [ "nvidia-persistenced.service" ] ++ lib.optional cfg.nvswitch "nvidia-fabricmanager.service";
      };

      # Newer than the option list in ../shared/nix: allowed, with the reason, in tests/check-options.py.
      services.prometheus.exporters.nvidia-gpu = lib.mkIf monitoring.enable {
        enable = true;
        inherit (monitoring) listenAddress openFirewall;
      };
    })

    # NVIDIA's fabric manager (nv-fabricmanager of the driver's own version) configures the NVSwitch fabric;
    # CUDA cannot use the GPUs of such a box before it has. The module is loaded at boot, not on demand, so
    # that the fabric manager finds it.
    (lib.mkIf (cfg.nvidia.enable && cfg.nvswitch) {
      boot.kernelModules = [ "nvidia" ];
      systemd.services.nvidia-fabricmanager = {
        description = "NVIDIA fabric manager (NVSwitch)";
        wantedBy = [ "multi-user.target" ];
        after = [ "systemd-modules-load.service" ];
        serviceConfig = {
          Type = "forking";
          ExecStart = "${driverPackage.fabricmanager}/bin/nv-fabricmanager -c ${fabricManagerConfig}";
          TimeoutStartSec = 240;
          Restart = "on-failure";
          LimitCORE = "infinity";
        };
      };
      environment.systemPackages = [ driverPackage.fabricmanager ];
    })
  ]);
}

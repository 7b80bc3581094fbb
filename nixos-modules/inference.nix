# services.endoreg.inference: the inference service (`endoreg-inference serve`). It takes prediction jobs
# from a registry: the anonymised video is run through a frame classifier (an ONNX model with its sidecar,
# ONNX Runtime on a CUDA GPU or the CPU), the per-frame probabilities go to storage and the smoothed label
# segments to the registry. Its HTTP side serves /healthz, /metrics (Prometheus) and single-image
# predictions for annotation tools.
#
# Conventions as in ./media.nix: `settings` is the TOML file (RFC 42) with typed options for the keys this
# module relies on; the service token reaches the unit as a systemd credential; on the registry's host the
# service shares the registry's dynamic user and state directory (it reads the anonymised videos from local
# storage and writes the probabilities there). On another host it needs the registry's URL and its shared
# storage (S3 in `settings.storage`, its key files as `credentialFiles`).
#
# ONNX Runtime is loaded at run time (`runtime.library`): the same package runs with nixpkgs' CPU build of
# onnxruntime and with its CUDA build. On a GPU host (`gpu = true`) the unit may open the NVIDIA device
# nodes and finds the driver's libcuda and libnvidia-ml in /run/opengl-driver/lib.
{ packagesFor }:
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  credentials = import ./credentials.nix { inherit lib; };

  cfg = config.services.endoreg.inference;
  registry = config.services.endoreg.registry;
  endoregPackages = packagesFor pkgs;
  settingsFormat = pkgs.formats.toml { };
  stateDir = "/var/lib/endoreg";

  # Bracket an IPv6 address for host:port.
  hostPort = addr: port: if lib.hasInfix ":" addr then "[${addr}]:${toString port}" else "${addr}:${toString port}";
  isLoopback = addr: lib.elem addr [ "127.0.0.1" "::1" "localhost" ];

  # Where NixOS links the graphics and compute driver's user-space libraries (libcuda, libnvidia-ml):
  # nixpkgs' addDriverRunpath.driverLink, which hardware.graphics populates.
  driverLib = "/run/opengl-driver/lib";

  # The keys generated from the options below: what refers to credentials, the model and the library.
  generated = {
    token_file = "token";
    model = {
      path = cfg.model;
    }
    // lib.optionalAttrs (cfg.modelMetadata != null) { metadata = cfg.modelMetadata; };
    runtime.library = "${cfg.onnxruntimePackage}/lib/libonnxruntime.so";
  };
  configFile = settingsFormat.generate "endoreg-inference.toml" (lib.recursiveUpdate cfg.settings generated);

  gpuProvider = lib.elem cfg.settings.runtime.execution_provider [ "cuda" "tensorrt" ];
in
{
  imports = [ ./state.nix ];

  options.services.endoreg.inference = {
    enable = lib.mkEnableOption "the endoreg inference service: prediction jobs (ONNX frame classifier → labelled video segments), single-image predictions, Prometheus metrics";

    package = lib.mkPackageOption endoregPackages "endoreg-inference" {
      pkgsText = "endoreg.packages.\${pkgs.stdenv.hostPlatform.system}";
    };

    onnxruntimePackage = lib.mkPackageOption pkgs "onnxruntime" {
      example = "pkgs.onnxruntime.override { cudaSupport = true; }";
      extraDescription = ''
        Its `lib/libonnxruntime.so` is loaded at run time (1.22 or newer). The default is the CPU build; on a
        GPU host use the CUDA build, `pkgs.onnxruntime.override { cudaSupport = true; }` (CUDA is unfree:
        allow it, as the ai-deploy role does; it is not in cache.nixos.org, so the first deployment builds it
        unless a CUDA binary cache is configured). nixpkgs' onnxruntime has no TensorRT provider.
      '';
    };

    model = mkOption {
      type = types.str;
      default = "${cfg.package}/share/endoreg/models/endoreg-demo-multilabel.onnx";
      defaultText = lib.literalExpression ''"''${config.services.endoreg.inference.package}/share/endoreg/models/endoreg-demo-multilabel.onnx"'';
      example = lib.literalExpression ''"''${./models}/colonoscopy-multilabel-2.onnx"'';
      description = ''
        Absolute path of the ONNX model to serve. Its sidecar (the model's contract: name, `version`, labels,
        preprocessing, thresholds) is the same path with `.toml` unless
        {option}`services.endoreg.inference.modelMetadata` says otherwise. The default is the demo model.

        Put a model into the Nix store as a directory, so that the sidecar stays beside it
        (`"''${./models}/name.onnx"`; a path to the `.onnx` file alone would copy only that file). A changed
        ONNX file needs a new `version` in its sidecar: the service refuses to start when the registry knows
        the version from another file.
      '';
    };

    modelMetadata = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Absolute path of the model's sidecar (TOML); `null`: the model's path with `.toml`.";
    };

    gpu = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Whether the service runs the model on an NVIDIA GPU: the unit may open the NVIDIA device nodes
        (/dev/nvidiactl, /dev/nvidia0 ..., /dev/nvidia-uvm, /dev/nvidia-caps) and finds the driver's
        libraries (libcuda, libnvidia-ml for the GPU metrics) in ${driverLib}. Needs the NVIDIA driver
        (the ai-deploy role) and a CUDA build of {option}`services.endoreg.inference.onnxruntimePackage`.
      '';
    };

    user = mkOption {
      type = types.str;
      default = if registry.enable then registry.user else "endoreg";
      defaultText = lib.literalExpression ''config.services.endoreg.registry.user (when the registry runs here) or "endoreg"'';
      description = "Dynamic user of the service; the registry's, so that both use the same state directory (local storage).";
    };

    tokenFile = mkOption {
      type = types.str;
      example = "/run/agenix/inference-token";
      description = ''
        File holding the service's API token (role `service`), an age-encrypted secret. The registry must
        know the token: on the registry's host, list the same file in
        {option}`services.endoreg.registry.tokenFiles` with role `service` (the roles do); for a registry
        on another host, create a token there (`sudo endoreg-admin token create --role service --name
        inference-HOST`) and put it in this host's secret.
      '';
    };

    credentialFiles = credentials.option { service = "services.endoreg.inference"; readers = "the service"; };

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = ''
        Address the HTTP side (/healthz, /metrics, single-image predictions for annotation tools) listens on.
        Loopback by default. /metrics needs no token; the prediction routes need a registry token.
      '';
    };

    port = mkOption {
      type = types.port;
      default = 8091;
      description = "Port of the HTTP side.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Whether to open {option}`services.endoreg.inference.port` in the firewall.";
    };

    settings = mkOption {
      default = { };
      description = ''
        The service's configuration file (TOML); see crates/inference/src/config.rs for every key. The token,
        the model and the ONNX Runtime library are set by {option}`services.endoreg.inference.tokenFile`,
        {option}`services.endoreg.inference.model` and
        {option}`services.endoreg.inference.onnxruntimePackage`.
      '';
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = {
          data_dir = mkOption {
            type = types.str;
            default = stateDir;
            readOnly = true;
            description = "The state directory, shared with the registry on its host (local storage, work files).";
          };
          registry_url = mkOption {
            type = types.str;
            default = if registry.enable then "http://127.0.0.1:${toString registry.port}" else "";
            defaultText = lib.literalExpression ''"http://127.0.0.1:''${toString config.services.endoreg.registry.port}" when the registry runs here'';
            description = "The registry's base URL.";
          };
          http.listen = mkOption {
            type = types.str;
            default = hostPort cfg.listenAddress cfg.port;
            defaultText = lib.literalExpression ''"''${listenAddress}:''${toString port}"'';
            description = "Address and port of the HTTP side; set listenAddress and port instead.";
          };
          runtime = {
            execution_provider = mkOption {
              type = types.enum [ "auto" "cuda" "tensorrt" "cpu" ];
              default = if cfg.gpu then "cuda" else "cpu";
              defaultText = lib.literalExpression ''if config.services.endoreg.inference.gpu then "cuda" else "cpu"'';
              description = ''
                Where ONNX Runtime runs the model. `cuda` (or `tensorrt`, which nixpkgs' onnxruntime lacks)
                falls back to the CPU with a warning when the provider cannot be used, unless
                `runtime.require_gpu`; `auto`: CUDA when usable, the CPU otherwise.
              '';
            };
            require_gpu = mkOption {
              type = types.bool;
              default = false;
              description = ''
                Fail at start (exit status 78; the unit is not restarted) instead of running on the CPU when no
                GPU provider can be used, e.g. after a driver update until the reboot.
              '';
            };
          };
          pipeline.step = mkOption {
            type = types.ints.positive;
            default = 1;
            description = "Predict every `step`-th frame of a video (1: every frame).";
          };
        };
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.settings.registry_url != "";
        message = "services.endoreg.inference: the registry does not run on this host; set services.endoreg.inference.settings.registry_url.";
      }
      {
        # the worker reads the anonymised videos from the registry's storage and writes the probabilities there
        assertion = registry.enable || (cfg.settings.storage.backend or "local") != "local";
        message = ''
          services.endoreg.inference: the registry does not run on this host, and storage is local. The service
          reads the anonymised videos from the registry's storage: set services.endoreg.inference.settings.storage
          to the registry's shared (S3) storage.
        '';
      }
      {
        assertion = !(cfg.settings ? token_file)
          && !(cfg.settings ? model && (cfg.settings.model ? path || cfg.settings.model ? metadata))
          && !(cfg.settings ? runtime && cfg.settings.runtime ? library);
        message = ''
          services.endoreg.inference: set tokenFile, model, modelMetadata and onnxruntimePackage instead of
          settings.token_file, settings.model.path, settings.model.metadata and settings.runtime.library.
        '';
      }
      {
        assertion = lib.hasPrefix "/" cfg.tokenFile && !(lib.hasPrefix builtins.storeDir cfg.tokenFile);
        message = "services.endoreg.inference: tokenFile must be an absolute path outside the Nix store (an age secret); a secret in the store is readable by everyone.";
      }
      {
        assertion = lib.hasPrefix "/" cfg.model && (cfg.modelMetadata == null || lib.hasPrefix "/" cfg.modelMetadata);
        message = "services.endoreg.inference.model and modelMetadata must be absolute paths.";
      }
      {
        assertion = registry.enable -> cfg.user == registry.user;
        message = "services.endoreg.inference.user must be the registry's user (${registry.user}) on the registry's host: they share the state directory.";
      }
      {
        assertion = (gpuProvider || cfg.settings.runtime.require_gpu) -> cfg.gpu;
        message = ''
          services.endoreg.inference: settings.runtime.execution_provider = "${cfg.settings.runtime.execution_provider}"
          ${lib.optionalString cfg.settings.runtime.require_gpu "and require_gpu "}need the GPU, but the unit may not open
          the NVIDIA devices: set services.endoreg.inference.gpu = true (the ai-deploy role does).
        '';
      }
      {
        assertion = cfg.openFirewall -> !(isLoopback cfg.listenAddress);
        message = "services.endoreg.inference.openFirewall is set, but the service listens on ${cfg.listenAddress}: set listenAddress to the address clients reach.";
      }
    ]
    ++ credentials.assertions {
      service = "services.endoreg.inference";
      files = cfg.credentialFiles;
      taken = n: n == "token";
      takenText = "`token` is the tokenFile's";
    };

    systemd.services.endoreg-inference = {
      description = "endoreg inference service";
      documentation = [ "https://github.com/endoreg/endoreg/blob/main/docs/operations.md" ];
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ] ++ lib.optional registry.enable "endoreg-registry.service";
      after = [ "network-online.target" ] ++ lib.optional registry.enable "endoreg-registry.service";
      environment = {
        ENDOREG_CONFIG = configFile;
      }
      // lib.optionalAttrs cfg.gpu {
        # libcuda (dlopened by the CUDA runtime) and libnvidia-ml (the GPU metrics) belong to the driver
        LD_LIBRARY_PATH = driverLib;
      };
      startLimitBurst = 5;
      startLimitIntervalSec = 600;
      serviceConfig = import ./sandbox.nix cfg.user // {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = "${lib.getExe cfg.package} serve";
        Restart = "on-failure";
        RestartSec = "10s";
        # 78 (EX_CONFIG): a configuration or model error (a bad model, a changed file under a known version,
        # no GPU with require_gpu) does not go away by restarting
        RestartPreventExitStatus = 78;
        # ready after the model is loaded and its version registered; it waits for a registry that is not up yet
        TimeoutStartSec = "5min";
        # at SIGTERM a job in progress stops and goes back to the queue (failed, to be retried)
        TimeoutStopSec = "120s";
        LoadCredential = [ "token:${cfg.tokenFile}" ] ++ credentials.load cfg.credentialFiles;

        StateDirectory = "endoreg";
        StateDirectoryMode = "0700";
        WorkingDirectory = stateDir;
        # the GPU: the NVIDIA device groups of /proc/devices (nvidia-frontend: /dev/nvidiactl and
        # /dev/nvidia0 ...; nvidia-uvm; nvidia-caps for MIG), as nixpkgs' ollama module allows them. Device
        # node paths cannot be globbed; these groups cover every GPU, present and future.
        PrivateDevices = !cfg.gpu;
        DeviceAllow = lib.optionals cfg.gpu [
          "char-nvidia-frontend rw"
          "char-nvidiactl rw"
          "char-nvidia-uvm rw"
          "char-nvidia-caps rw"
        ];
        # ONNX Runtime learns the CPU's features from /proc/cpuinfo (without it: slower kernels), the NVIDIA
        # driver reads /proc/driver/nvidia
        ProcSubset = "all";
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
        SystemCallFilter = [ "@system-service" "~@privileged" ]
          # the CUDA runtime places memory and threads (NUMA, affinity): @resources, as ollama allows
          ++ lib.optional (!cfg.gpu) "~@resources";
        # ONNX Runtime 1.21 and 1.22 built from source, as nixpkgs builds them, are linked without
        # `-z noexecstack` (restored in 1.23, microsoft/onnxruntime#25200): glibc's dlopen makes the stack
        # executable for such a library, which MemoryDenyWriteExecute refuses, so the service could not load
        # it (nixpkgs' piper service turned it off for the same library, NixOS/nixpkgs#402111). The worker
        # itself needs no writable code: with a library whose stack is not executable (the 1.22 wheel) it runs
        # the demo and the RegNet benchmark model on images and a video under it (.ci-nix/mdwe-check.sh, which
        # also shows the refusal); turn it on again with ONNX Runtime 1.23 or newer. CUDA not checked.
        MemoryDenyWriteExecute = false;
        # prediction is batch work: the registry's API keeps priority
        Nice = 5;
      };
    };

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];

    # The state directory: work files (each video is downloaded there while it is predicted) belong on the
    # disk, not in the memory of the tmpfs root; on the registry's host the registry declares it as well.
    endoreg.persistence.directories = [
      {
        directory = "/var/lib/private/endoreg";
        mode = "0700";
      }
    ];
  };
}

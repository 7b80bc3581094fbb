# services.endoreg.media: media workers (`endoreg-media run`) that take jobs from a registry: probe,
# anonymise and extract frames of endoscopy videos, extract text from report PDFs.
#
# On the registry's host (the default) a worker shares the registry's service user and state directory:
# local media storage and the key pair raw uploads are encrypted to are there. On another host it needs
# the registry's URL, shared storage (S3 in `settings.storage`) and the identity file of the raw uploads.
# The service token, the identity and any other secret file (`credentialFiles`, e.g. the S3 keys) reach the
# worker as systemd credentials.
{ packagesFor }:
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  credentials = import ./credentials.nix { inherit lib; };

  cfg = config.services.endoreg.media;
  registry = config.services.endoreg.registry;
  endoregPackages = packagesFor pkgs;
  settingsFormat = pkgs.formats.toml { };
  stateDir = "/var/lib/endoreg";

  loadCredential =
    [ "token:${cfg.tokenFile}" ]
    ++ lib.optional (cfg.identityFile != null) "identity:${cfg.identityFile}"
    ++ credentials.load cfg.credentialFiles;

  generated = {
    token_file = "token";
  }
  // lib.optionalAttrs (cfg.identityFile != null) { identity_file = "identity"; };
  configFile = settingsFormat.generate "endoreg-media.toml" (lib.recursiveUpdate cfg.settings generated);

  worker = i: lib.nameValuePair "endoreg-media-${toString i}" {
    description = "endoreg media worker ${toString i}";
    wantedBy = [ "multi-user.target" ];
    wants = [ "network-online.target" ];
    after = [ "network-online.target" ] ++ lib.optional registry.enable "endoreg-registry.service";
    environment.ENDOREG_CONFIG = configFile;
    startLimitBurst = 5;
    startLimitIntervalSec = 600;
    serviceConfig = import ./sandbox.nix cfg.user // {
      Type = "notify";
      NotifyAccess = "main";
      ExecStart = "${lib.getExe cfg.package} run";
      Restart = "on-failure";
      RestartSec = "10s";
      # a job in progress is given back at SIGTERM; a long encode may need its lease's time to stop
      TimeoutStopSec = "120s";
      LoadCredential = loadCredential;
      StateDirectory = "endoreg";
      StateDirectoryMode = "0700";
      WorkingDirectory = stateDir;
      RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
      # FFmpeg's swscale generates its fast-bilinear scaler at run time on x86 (an anonymous mapping, written,
      # then made executable), and frame extraction asks for it (SWS_FAST_BILINEAR in
      # crates/media/src/video/frames.rs): under MemoryDenyWriteExecute that mprotect is refused and every
      # frame extraction of a video whose width is a multiple of 32 fails. Decoding, the anonymisation and
      # libx264 run under it (.ci-nix/mdwe-check.sh); with BILINEAR there it could be on again.
      MemoryDenyWriteExecute = false;
      # encoding is batch work: the registry's API keeps priority
      Nice = 5;
    };
  };
in
{
  imports = [ ./state.nix ];

  options.services.endoreg.media = {
    enable = lib.mkEnableOption "endoreg media workers: anonymisation and frame extraction of endoscopy videos, text extraction of report PDFs";

    package = lib.mkPackageOption endoregPackages "endoreg-media" {
      pkgsText = "endoreg.packages.\${pkgs.stdenv.hostPlatform.system}";
    };

    workers = mkOption {
      type = types.ints.positive;
      default = 1;
      description = "Number of worker processes (units endoreg-media-1 ... endoreg-media-N); each encodes with all cores by default.";
    };

    user = mkOption {
      type = types.str;
      default = if registry.enable then registry.user else "endoreg";
      defaultText = lib.literalExpression ''config.services.endoreg.registry.user (when the registry runs here) or "endoreg"'';
      description = "Dynamic user of the workers; the registry's, so that both use the same state directory.";
    };

    tokenFile = mkOption {
      type = types.str;
      example = "/run/agenix/media-token";
      description = ''
        File holding the workers' API token (role `service`), an age-encrypted secret. The registry must
        know the token: on the registry's host, list the same file in
        {option}`services.endoreg.registry.tokenFiles` with role `service`.
      '';
    };

    identityFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = ''
        The age identity that decrypts raw uploads. `null`: the registry's key pair in the shared state
        directory (the registry must run on this host).
      '';
    };

    credentialFiles = credentials.option { service = "services.endoreg.media"; readers = "the workers"; };

    settings = mkOption {
      default = { };
      description = ''
        The workers' configuration file (TOML); see crates/media/src/config.rs. The token and the identity
        are set by {option}`services.endoreg.media.tokenFile` and {option}`services.endoreg.media.identityFile`.
      '';
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = {
          data_dir = mkOption {
            type = types.str;
            default = stateDir;
            readOnly = true;
            description = "The state directory, shared with the registry on its host (local storage, keys, work files).";
          };
          registry_url = mkOption {
            type = types.str;
            default = if registry.enable then "http://127.0.0.1:${toString registry.port}" else "";
            defaultText = lib.literalExpression ''"http://127.0.0.1:''${toString config.services.endoreg.registry.port}" when the registry runs here'';
            description = "The registry's base URL.";
          };
        };
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.settings.registry_url != "";
        message = "services.endoreg.media: the registry does not run on this host; set services.endoreg.media.settings.registry_url.";
      }
      {
        assertion = cfg.identityFile == null -> registry.enable;
        message = ''
          services.endoreg.media.identityFile is null, which means the registry's key pair in the shared state
          directory, but the registry does not run on this host: set identityFile to the age identity of the raw uploads.
        '';
      }
      {
        assertion = !(cfg.settings ? token_file || cfg.settings ? identity_file);
        message = "services.endoreg.media: set tokenFile and identityFile instead of settings.token_file and settings.identity_file (they reach the workers as credentials).";
      }
      {
        assertion = lib.all (f: lib.hasPrefix "/" f && !(lib.hasPrefix builtins.storeDir f))
          ([ cfg.tokenFile ] ++ lib.optional (cfg.identityFile != null) cfg.identityFile);
        message = "services.endoreg.media: tokenFile and identityFile must be absolute paths outside the Nix store (age secrets); a secret in the store is readable by everyone.";
      }
      {
        assertion = registry.enable -> cfg.user == registry.user;
        message = "services.endoreg.media.user must be the registry's user (${registry.user}) on the registry's host: they share the state directory.";
      }
    ]
    ++ credentials.assertions {
      service = "services.endoreg.media";
      files = cfg.credentialFiles;
      taken = n: lib.elem n [ "token" "identity" ];
      takenText = "`token` and `identity` are those of tokenFile and identityFile";
    };

    systemd.services = lib.listToAttrs (map worker (lib.range 1 cfg.workers));

    # the state directory (work files, and on a host without the registry the local keys); the registry
    # declares the same directory where it runs
    endoreg.persistence.directories = [
      {
        directory = "/var/lib/private/endoreg";
        mode = "0700";
      }
    ];
  };
}

# services.endoreg.registry: the registry server (`endoreg-registry`), its database (SQLite in the state
# directory, or PostgreSQL on this host over the local socket with peer authentication), scheduled exports
# of the database, and `endoreg-admin`, the CLI run as the service would run it.
#
# Conventions (nixpkgs' meilisearch, lldap, ollama modules): `settings` is the registry's TOML file (RFC 42),
# with typed options for the keys this module relies on; secrets only as paths to files, handed to the unit
# with LoadCredential (the registry resolves a relative path against $CREDENTIALS_DIRECTORY): tokens,
# the database password, and any other secret file a setting names (`credentialFiles`, e.g. the keys of S3
# storage); DynamicUser with a StateDirectory; a hardened unit; the firewall opened only when asked.
{ packagesFor }:
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  credentials = import ./credentials.nix { inherit lib; };

  cfg = config.services.endoreg.registry;
  endoregPackages = packagesFor pkgs;
  pkgsText = "endoreg.packages.\${pkgs.stdenv.hostPlatform.system}";
  settingsFormat = pkgs.formats.toml { };

  stateDir = "/var/lib/endoreg";
  backupDir = "/var/lib/endoreg-backup";
  pgLocal = cfg.database.type == "postgresql" && cfg.database.createLocally;

  # LoadCredential ids. The registry reads `auth.token_files[].file` and `database.password_file` relative
  # to $CREDENTIALS_DIRECTORY, so the configuration names credentials, not paths.
  tokenCredential = t: "token-${t.name}";
  loadCredential =
    map (t: "${tokenCredential t}:${t.file}") cfg.tokenFiles
    ++ lib.optional (cfg.database.passwordFile != null) "database-password:${cfg.database.passwordFile}"
    ++ credentials.load cfg.credentialFiles;

  # The generated part of the configuration: what refers to credentials.
  generated = {
    auth.token_files = map
      (t: {
        inherit (t) name role;
        file = tokenCredential t;
      })
      cfg.tokenFiles;
  }
  // lib.optionalAttrs (cfg.database.passwordFile != null) {
    database.password_file = "database-password";
  };
  configFile = settingsFormat.generate "endoreg-registry.toml" (lib.recursiveUpdate cfg.settings generated);

  cli = lib.getExe cfg.cliPackage;

  dbUnits = lib.optional pgLocal "postgresql.target";

  # Whether the database is reached without the network: SQLite (no URL, or a sqlite: URL), or PostgreSQL
  # over a Unix socket: a `host=/...` parameter (the local database's URL) or a socket directory as the
  # URL's percent-encoded host (`postgresql://%2Frun%2Fpostgresql/db`). Anything else (a host name, an
  # address, no host at all, which means localhost over TCP unless a socket happens to exist) needs TCP.
  databaseUrl = cfg.settings.database_url or null;
  databaseWithoutNetwork =
    databaseUrl == null
    || lib.hasPrefix "sqlite:" databaseUrl
    || builtins.match "postgres(ql)?://[^/?]*%2[Ff][^?]*" databaseUrl != null
    || builtins.match "postgres(ql)?://[^?]*[?](.*&)?host=(/|%2[Ff]).*" databaseUrl != null;

  # Bracket an IPv6 address for host:port.
  hostPort = addr: port: if lib.hasInfix ":" addr then "[${addr}]:${toString port}" else "${addr}:${toString port}";
  isLoopback = addr: lib.elem addr [ "127.0.0.1" "::1" "localhost" ];

  # The sandbox of the server and of its backups (./sandbox.nix), with the registry's credentials.
  sandbox = import ./sandbox.nix cfg.user // { LoadCredential = loadCredential; };

  # `endoreg-admin ARGS`: the endoreg CLI with the service's user, state, configuration and credentials
  # (so the database, SQLite or PostgreSQL with peer authentication, is the service's), in a transient unit.
  # Run it as root. DynamicUser implies a read-only system: files go in the state directories.
  admin = pkgs.writeShellScriptBin "endoreg-admin" ''
    if [ "$(id -u)" -ne 0 ]; then
      echo "endoreg-admin runs the endoreg CLI as the registry's service user; run it as root (sudo endoreg-admin ...)" >&2
      exit 1
    fi
    exec ${config.systemd.package}/bin/systemd-run --quiet --collect --wait --pipe \
      --service-type=exec \
      ${lib.concatStringsSep " " (lib.mapAttrsToList (k: v: lib.escapeShellArg "--property=${k}=${v}") adminProperties)} \
      ${lib.concatMapStringsSep " " (c: lib.escapeShellArg "--property=LoadCredential=${c}") loadCredential} \
      --setenv=ENDOREG_CONFIG=${configFile} \
      --working-directory=${stateDir} \
      -- ${cli} "$@"
  '';
  adminProperties = {
    DynamicUser = "yes";
    User = cfg.user;
    Group = cfg.user;
    StateDirectory = lib.concatStringsSep " " ([ "endoreg" ] ++ lib.optional cfg.backup.enable "endoreg-backup");
    StateDirectoryMode = "0700";
    UMask = "0077";
  } // lib.optionalAttrs pgLocal {
    After = "postgresql.target";
    Requires = "postgresql.target";
  };
in
{
  imports = [ ./state.nix ];

  options.services.endoreg.registry = {
    enable = lib.mkEnableOption "the endoreg registry, the clinical endoscopy research registry's database and HTTP API";

    package = lib.mkPackageOption endoregPackages "endoreg-registry" { inherit pkgsText; };

    cliPackage = lib.mkPackageOption endoregPackages "endoreg" {
      inherit pkgsText;
      extraDescription = "The command line; it migrates the database and loads the knowledge base before the server starts.";
    };

    user = mkOption {
      type = types.strMatching "[a-z_][a-z0-9_-]*";
      default = "endoreg";
      description = ''
        Name of the service's dynamic user and group (systemd DynamicUser), and of its PostgreSQL role:
        with peer authentication the two must be the same.
      '';
    };

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = "Address the HTTP API listens on. Loopback by default: exposing the registry is a deliberate act.";
    };

    port = mkOption {
      type = types.port;
      default = 8080;
      description = "Port of the HTTP API.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Whether to open {option}`services.endoreg.registry.port` in the firewall.";
    };

    database = {
      type = mkOption {
        type = types.enum [ "sqlite" "postgresql" ];
        default = "sqlite";
        description = ''
          `sqlite`: a database file in the state directory (a workstation, a small site).
          `postgresql`: PostgreSQL, reached over its Unix socket with peer authentication (no password).
        '';
      };
      createLocally = mkOption {
        type = types.bool;
        default = true;
        description = ''
          With `database.type = "postgresql"`: run PostgreSQL on this host and create the database and
          the role `services.endoreg.registry.user` owning it (ensureDatabases/ensureUsers).
        '';
      };
      name = mkOption {
        type = types.str;
        default = cfg.user;
        defaultText = lib.literalExpression "config.services.endoreg.registry.user";
        description = "Name of the PostgreSQL database. With createLocally it must equal the user (it owns the database).";
      };
      passwordFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/agenix/registry-database-password";
        description = ''
          File holding the password for a remote PostgreSQL (`settings.database_url`); not needed with a
          local database. Handed to the service as a systemd credential.
        '';
      };
    };

    tokenFiles = mkOption {
      default = [ ];
      example = lib.literalExpression ''
        [ { name = "admin"; role = "admin"; file = config.endoreg.secrets.files.registry-admin-token.path; } ]
      '';
      description = ''
        API tokens the registry registers at startup, each read from a file (an age-encrypted secret) that
        holds one token (`endoreg_` followed by at least 32 base64url characters). The files are handed to
        the service with LoadCredential; they need not be readable by the service user.
      '';
      type = types.listOf (
        types.submodule {
          options = {
            name = mkOption {
              type = types.strMatching "[A-Za-z0-9_-]+";
              description = "What the token is for (shown by `endoreg token list`).";
            };
            role = mkOption {
              type = types.enum [ "admin" "data_manager" "annotator" "researcher" "service" ];
              description = "The token's role.";
            };
            file = mkOption {
              type = types.str;
              description = "Absolute path of the file holding the token.";
            };
          };
        }
      );
    };

    credentialFiles = credentials.option { service = "services.endoreg.registry"; readers = "the registry (and to `endoreg-admin` and the backups)"; };

    loadKnowledgeBase = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether to load the built-in knowledge base (`endoreg kb load`) before every start. Loading the same
        knowledge base again changes nothing; a new release's additions arrive with the restart.
      '';
    };

    settings = mkOption {
      default = { };
      description = ''
        The registry's configuration file (TOML); see crates/registry/src/config.rs for every key. Secrets do
        not belong here: use {option}`services.endoreg.registry.tokenFiles`,
        {option}`services.endoreg.registry.database.passwordFile` and, for the files other keys name (the S3
        keys of `storage`), {option}`services.endoreg.registry.credentialFiles`.
      '';
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = {
          data_dir = mkOption {
            type = types.str;
            default = stateDir;
            readOnly = true;
            description = "The state directory (SQLite database, local media storage, the key for raw uploads).";
          };
          database_url = mkOption {
            type = types.nullOr types.str;
            default =
              if cfg.database.type == "postgresql" && cfg.database.createLocally
              then "postgresql:///${cfg.database.name}?host=/run/postgresql"
              else null;
            defaultText = lib.literalExpression ''
              "postgresql:///''${database.name}?host=/run/postgresql" with a local PostgreSQL, else null (SQLite in data_dir)
            '';
            description = "Database URL; `null` means SQLite at `<data_dir>/registry.db`. Never with a password in it.";
          };
          http.listen = mkOption {
            type = types.str;
            default = hostPort cfg.listenAddress cfg.port;
            defaultText = lib.literalExpression ''"''${listenAddress}:''${toString port}"'';
            description = "Address and port of the HTTP API; set listenAddress and port instead.";
          };
          web = {
            enabled = mkOption {
              type = types.bool;
              default = true;
              description = ''
                Whether the registry serves its web app (worklist, video player and segment timeline, reports,
                patients); the API is served either way. The app is part of the registry's binary and loads
                nothing from elsewhere.
              '';
            };
            path = mkOption {
              type = types.strMatching "/([A-Za-z0-9._-]+/?)*";
              default = "/";
              example = "/endoreg/";
              description = "Where the web app is served; not under /api/, /healthz or /readyz.";
            };
            session_idle_minutes = mkOption {
              type = types.ints.between 1 525600;
              default = 60;
              description = "A browser session not used for this long ends.";
            };
            session_max_hours = mkOption {
              type = types.ints.between 1 8760;
              default = 12;
              description = "A browser session ends this long after sign-in, used or not.";
            };
          };
        };
      };
      # TOML has no null: an unset key means the registry's default.
      apply = lib.filterAttrsRecursive (_: v: v != null);
    };

    backup = {
      enable = lib.mkEnableOption ''
        scheduled exports of the registry's database with `endoreg export` (versioned JSON lines, gzip) into
        /var/lib/endoreg-backup, kept on the persistent volume; restore with `endoreg-admin import FILE`
      '';
      startAt = mkOption {
        type = types.str;
        default = "*-*-* 02:30:00";
        description = "When to export (systemd calendar event); a run missed while the host was off runs at the next boot.";
      };
      keep = mkOption {
        type = types.ints.positive;
        default = 14;
        description = "How many exports to keep; older ones are removed after a successful export.";
      };
    };
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    {
      assertions = [
        {
          assertion = !(cfg.settings ? auth && cfg.settings.auth ? token_files);
          message = ''
            services.endoreg.registry.settings.auth.token_files is generated: set
            services.endoreg.registry.tokenFiles instead, so the token files reach the service as credentials.
          '';
        }
        {
          assertion = !(cfg.settings ? database && cfg.settings.database ? password_file);
          message = "services.endoreg.registry.settings.database.password_file is generated: set services.endoreg.registry.database.passwordFile instead.";
        }
        {
          assertion = !(cfg.settings ? database_url) || builtins.match "[a-z]+://[^/@]*:[^/@]*@.*" cfg.settings.database_url == null;
          message = "services.endoreg.registry.settings.database_url contains a password; it would be world-readable in the Nix store. Put it in a file and set services.endoreg.registry.database.passwordFile.";
        }
        {
          assertion = lib.all (t: lib.hasPrefix "/" t.file && !(lib.hasPrefix builtins.storeDir t.file)) cfg.tokenFiles;
          message = "services.endoreg.registry.tokenFiles: every file must be an absolute path outside the Nix store (an agenix secret such as config.endoreg.secrets.files.<name>.path); a token in the store is readable by everyone.";
        }
        {
          assertion = lib.allUnique (map (t: t.name) cfg.tokenFiles);
          message = "services.endoreg.registry.tokenFiles: the names must be unique.";
        }
        {
          assertion = pgLocal -> cfg.database.name == cfg.user;
          message = ''
            services.endoreg.registry: with a local PostgreSQL the database (database.name = "${cfg.database.name}")
            must be named like the service user (user = "${cfg.user}"): the role owns the database of its name
            (ensureDBOwnership) and peer authentication maps the Unix user to the role of the same name.
          '';
        }
        {
          assertion = cfg.database.type == "postgresql" && !cfg.database.createLocally -> cfg.settings ? database_url;
          message = "services.endoreg.registry: database.type = \"postgresql\" with createLocally = false needs settings.database_url.";
        }
        {
          assertion = cfg.openFirewall -> !(isLoopback cfg.listenAddress);
          message = "services.endoreg.registry.openFirewall is set, but the registry listens on ${cfg.listenAddress}: set listenAddress to the address clients reach.";
        }
      ]
      ++ credentials.assertions {
        service = "services.endoreg.registry";
        files = cfg.credentialFiles;
        taken = n: n == "database-password" || lib.hasPrefix "token-" n;
        takenText = "`database-password` and `token-*` are those of database.passwordFile and tokenFiles";
      };

      environment.systemPackages = [ cfg.cliPackage admin ];

      systemd.services.endoreg-registry = {
        description = "endoreg registry";
        documentation = [ "https://github.com/endoreg/endoreg/blob/main/docs/operations.md" ];
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ] ++ dbUnits;
        requires = dbUnits;
        environment.ENDOREG_CONFIG = configFile;
        startLimitBurst = 5;
        startLimitIntervalSec = 600;
        serviceConfig = sandbox // {
          Type = "notify";
          NotifyAccess = "main";
          ExecStartPre = [ "${cli} migrate" ] ++ lib.optional cfg.loadKnowledgeBase "${cli} kb load";
          ExecStart = lib.getExe cfg.package;
          Restart = "on-failure";
          RestartSec = "5s";
          # 78 (EX_CONFIG): a configuration error does not go away by restarting
          RestartPreventExitStatus = 78;
          # migrations of a large database run in ExecStartPre
          TimeoutStartSec = "15min";
          TimeoutStopSec = "60s";
          StateDirectory = "endoreg";
          StateDirectoryMode = "0700";
          WorkingDirectory = stateDir;
          # The API is TCP; AF_UNIX for the PostgreSQL socket, the journal and sd_notify.
          RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
        };
      };

      networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];

      # The database (SQLite), local media storage and the key pair raw uploads are encrypted to. The key is
      # the one thing that cannot be recreated: without it no raw upload can be read again.
      endoreg.persistence.directories = [
        {
          directory = "/var/lib/private/endoreg";
          mode = "0700";
        }
      ];
    }

    (lib.mkIf pgLocal {
      services.postgresql = {
        enable = true;
        ensureDatabases = [ cfg.database.name ];
        ensureUsers = [
          {
            name = cfg.user;
            ensureDBOwnership = true;
          }
        ];
        # NixOS' default authentication is peer for local connections; nothing to add.
      };
      endoreg.persistence.directories = [
        {
          directory = "/var/lib/postgresql";
          user = "postgres";
          group = "postgres";
          mode = "0750";
        }
      ];
    })

    (lib.mkIf cfg.backup.enable {
      systemd.services.endoreg-registry-backup = {
        description = "Export the endoreg registry's database";
        after = [ "endoreg-registry.service" ] ++ dbUnits ++ lib.optional (!databaseWithoutNetwork) "network-online.target";
        wants = lib.optional (!databaseWithoutNetwork) "network-online.target";
        requires = dbUnits;
        startAt = cfg.backup.startAt;
        environment.ENDOREG_CONFIG = configFile;
        path = [ pkgs.coreutils pkgs.findutils ];
        script = ''
          set -euo pipefail
          name="registry-$(date -u +%Y%m%dT%H%M%SZ).jsonl.gz"
          # export under a temporary name, so a half-written file is never taken for a backup
          ${cli} export "${backupDir}/.partial-$name"
          mv "${backupDir}/.partial-$name" "${backupDir}/$name"
          rm -f ${backupDir}/.partial-*
          # keep the newest ${toString cfg.backup.keep}
          ls -1t ${backupDir}/registry-*.jsonl.gz | tail -n +${toString (cfg.backup.keep + 1)} | xargs -r rm --
        '';
        serviceConfig = sandbox // {
          Type = "oneshot";
          StateDirectory = [ "endoreg" "endoreg-backup" ];
          StateDirectoryMode = "0700";
          WorkingDirectory = backupDir;
          # a local database is a file or a socket: no network at all; a remote one (or PostgreSQL over TCP)
          # is reached like the server reaches it
          PrivateNetwork = databaseWithoutNetwork;
          RestrictAddressFamilies = [ "AF_UNIX" ] ++ lib.optionals (!databaseWithoutNetwork) [ "AF_INET" "AF_INET6" ];
          Nice = 10;
          IOSchedulingClass = "idle";
        };
      };
      systemd.timers.endoreg-registry-backup.timerConfig = {
        Persistent = true;
        RandomizedDelaySec = "15min";
      };
      endoreg.persistence.directories = [
        {
          directory = "/var/lib/private/endoreg-backup";
          mode = "0700";
        }
      ];
    })
  ]);
}

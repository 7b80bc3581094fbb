# endoreg.monitoring: Prometheus exporters for what runs on the host. The host itself and its systemd units
# (node exporter), PostgreSQL when the host runs it, the NVIDIA GPUs on ai-deploy hosts (see
# roles/ai-deploy.nix). Exporters listen on loopback unless told otherwise; the firewall opens only when asked.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.endoreg.monitoring;
in
{
  options.endoreg.monitoring = {
    enable = lib.mkEnableOption "Prometheus exporters for this host, its systemd units, PostgreSQL and NVIDIA GPUs (where present)";

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = "Address the exporters listen on. A Prometheus on another host needs an address it can reach, and openFirewall.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Whether to open the exporters' ports in the firewall.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.openFirewall -> !(lib.elem cfg.listenAddress [ "127.0.0.1" "::1" ]);
        message = "endoreg.monitoring.openFirewall is set, but the exporters listen on ${cfg.listenAddress}: set endoreg.monitoring.listenAddress.";
      }
    ];

    services.prometheus.exporters.node = {
      enable = true;
      inherit (cfg) listenAddress openFirewall;
      # failed units (a backup that did not run, a service that cannot read its secret) are what to alert on
      enabledCollectors = [ "systemd" ];
    };

    services.prometheus.exporters.postgres = lib.mkIf config.services.postgresql.enable {
      enable = true;
      inherit (cfg) listenAddress openFirewall;
      # connects as the postgres superuser over the local socket (peer authentication), no password
      runAsLocalSuperUser = true;
    };
  };
}

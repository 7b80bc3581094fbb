# A research workstation: its own registry (SQLite unless the box is also the data-processing server), the
# tools of `nix develop`, and a data-science toolchain. Researchers' home directories persist. On request
# (inference.enable) the inference service on the CPU; roles/default.nix wires its token.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.endoreg.roles.research-workstation;
  dataProcessing = config.endoreg.roles.data-processing;
in
{
  options.endoreg.roles.research-workstation = {
    enable = lib.mkEnableOption "the research-workstation role: a local registry, nix develop tooling, Python with numpy, pandas and Jupyter";

    registryDatabase = mkOption {
      type = types.enum [ "sqlite" "postgresql" ];
      default = if dataProcessing.enable then "postgresql" else "sqlite";
      defaultText = lib.literalExpression ''if config.endoreg.roles.data-processing.enable then "postgresql" else "sqlite"'';
      description = ''
        The local registry's database. SQLite on a workstation of its own; on a box that is also the
        data-processing server there is one registry, and it is that role's PostgreSQL registry.
      '';
    };

    python = mkOption {
      type = types.package;
      default = pkgs.python3.withPackages (ps: [
        ps.numpy
        ps.pandas
        ps.scipy
        ps.matplotlib
        ps.scikit-learn
        ps.jupyter
        ps.ipykernel
        ps.pyarrow
      ]);
      defaultText = lib.literalExpression "pkgs.python3.withPackages (ps: [ ps.numpy ps.pandas ps.scipy ps.matplotlib ps.scikit-learn ps.jupyter ps.ipykernel ps.pyarrow ])";
      description = "The Python environment of the workstation.";
    };

    inference.enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Whether to run the inference service on the CPU against the workstation's registry: single-image
        predictions for annotation tools, and predictions of the registry's processed videos (a workstation
        runs no media workers, so it has processed videos only when the box is also the data-processing
        server). Needs the host secret `inference-token`. On a box that is also an ai-deploy host running
        inference, the service runs on the GPU instead.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = dataProcessing.enable -> cfg.registryDatabase == "postgresql";
        message = ''
          ${config.networking.hostName} takes the roles data-processing and research-workstation, and
          endoreg.roles.research-workstation.registryDatabase is "${cfg.registryDatabase}". A host runs one
          registry, and the data-processing role runs it on PostgreSQL (shared with the media workers and the
          backups). Remove the registryDatabase setting (it then follows data-processing) or set it to "postgresql".
        '';
      }
    ];

    services.endoreg.registry = {
      enable = true;
      # a default only: data-processing's PostgreSQL wins on a box with both roles (see the assertion above)
      database.type = lib.mkDefault cfg.registryDatabase;
    };

    environment.systemPackages = [
      cfg.python
      pkgs.git
      pkgs.ffmpeg
      pkgs.sqlite
      pkgs.age
    ];

    # `nix develop` in the endoreg checkout (and any flake), entered automatically by direnv
    nix.settings.experimental-features = [ "nix-command" "flakes" ];
    programs.direnv = {
      enable = true;
      nix-direnv.enable = true;
    };

    # research data and notebooks live in the home directories
    endoreg.persistence.directories = [ "/home" ];
  };
}

{
  description = "endoreg: a clinical endoscopy research registry, and the NixOS framework that deploys it";

  # Every input is pinned in flake.lock. `follows` keeps one nixpkgs for everything; inputs that only serve
  # outputs we do not use (agenix's darwin and home-manager support, impermanence's home-manager module)
  # follow nothing, so they are neither fetched nor locked.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
    agenix = {
      url = "github:ryantm/agenix";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.darwin.follows = "";
      inputs.home-manager.follows = "";
      # only agenix's own `packages` output reads it; the CLI is built from its source below
      inputs.systems.follows = "";
    };
    impermanence = {
      url = "github:nix-community/impermanence";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.home-manager.follows = "";
    };
    disko = {
      url = "github:nix-community/disko";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    { self
    , nixpkgs
    , crane
    , agenix
    , impermanence
    , disko
    }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      cargoToml = lib.importTOML ./Cargo.toml;

      # The Rust workspace, built with crane: the dependencies of the whole workspace are built once
      # (`cargoArtifacts`) and reused by every package and by clippy and the tests.
      workspace =
        pkgs:
        let
          craneLib = crane.mkLib pkgs;

          # What the packages are built from: Cargo sources plus what the crates embed at compile time, the
          # knowledge base (crates/registry/kb/*.toml, include_dir!), the migrations (*.sql, sqlx::migrate!)
          # and Markdown pulled into doc comments. Nothing else, so that editing docs/ or the Nix files does
          # not rebuild the binaries.
          src = lib.fileset.toSource {
            root = ./.;
            fileset = lib.fileset.unions [
              ./Cargo.toml
              ./Cargo.lock
              (lib.fileset.fileFilter (f: lib.any f.hasExt [ "rs" "toml" "sql" "md" ]) ./crates)
            ];
          };
          # How the tests run in the sandbox: their files, programs, variables and skipped tests
          # (reproduced without Nix by .ci-nix/sandbox-tests.sh).
          testEnv = import ./tests/cargo-test-env.nix { inherit pkgs; };
          # Tests, clippy and rustfmt also need the test fixtures, the lint configuration and what the tests read.
          checkSrc = lib.fileset.toSource {
            root = ./.;
            fileset = lib.fileset.unions (map (f: ./. + "/${f}") testEnv.files);
          };

          commonArgs = {
            inherit src;
            pname = "endoreg-workspace";
            inherit (cargoToml.workspace.package) version;
            strictDeps = true;
            # ffmpeg-sys-next (crates/media) finds FFmpeg with pkg-config and generates its bindings with
            # libclang; the dependency build covers the whole workspace, so every package shares this.
            nativeBuildInputs = [ pkgs.pkg-config pkgs.rustPlatform.bindgenHook ];
            buildInputs = [ pkgs.ffmpeg ];
          };
          cargoArtifacts = craneLib.buildDepsOnly commonArgs;

          # The inference service's demo model (crates/inference/models: the ONNX file is not Cargo source).
          demoModel = lib.fileset.toSource {
            root = ./crates/inference/models;
            fileset = lib.fileset.unions [
              ./crates/inference/models/endoreg-demo-multilabel.onnx
              ./crates/inference/models/endoreg-demo-multilabel.toml
            ];
          };

          # One package per binary; a new service crate is one more entry below.
          crate =
            { pname
            , cargoPackage ? pname
            , description
            , extraArgs ? { }
            }:
            craneLib.buildPackage (
              commonArgs
              // {
                inherit pname cargoArtifacts;
                cargoExtraArgs = "--locked --package ${cargoPackage}";
                # the workspace's tests run once, in checks.cargo-test
                doCheck = false;
                meta = {
                  inherit description;
                  mainProgram = pname;
                  license = lib.licenses.gpl3Plus;
                  platforms = lib.platforms.linux;
                };
              }
              // extraArgs
            );

          packages = {
            endoreg-registry = crate {
              pname = "endoreg-registry";
              description = "The endoreg registry server";
            };
            endoreg = crate {
              pname = "endoreg";
              cargoPackage = "endoreg-cli";
              description = "The endoreg command line: migrations, knowledge base, tokens, backup, queries";
            };
            endoreg-media = crate {
              pname = "endoreg-media";
              description = "The endoreg media worker";
            };
            # ONNX Runtime is not linked: the `ort` crate loads libonnxruntime.so at run time (load-dynamic), so
            # one build serves the CPU and the CUDA build of nixpkgs' onnxruntime, and nothing is downloaded in
            # the build sandbox. The NixOS module names the library in the configuration (runtime.library);
            # elsewhere the wrapper's default ORT_DYLIB_PATH, the CPU build, applies. The demo model and its
            # sidecar are installed to share/endoreg/models/.
            endoreg-inference = crate {
              pname = "endoreg-inference";
              description = "The endoreg inference service: ONNX frame classifier, prediction jobs, metrics";
              extraArgs = {
                nativeBuildInputs = commonArgs.nativeBuildInputs ++ [ pkgs.makeWrapper ];
                postInstall = ''
                  install -D -m 0644 -t $out/share/endoreg/models \
                    ${demoModel}/endoreg-demo-multilabel.onnx ${demoModel}/endoreg-demo-multilabel.toml
                  wrapProgram $out/bin/endoreg-inference \
                    --set-default ORT_DYLIB_PATH ${pkgs.onnxruntime}/lib/libonnxruntime.so
                '';
              };
            };
          };

          checks = {
            cargo-clippy = craneLib.cargoClippy (
              commonArgs
              // {
                inherit cargoArtifacts;
                src = checkSrc;
                cargoClippyExtraArgs = "--workspace --all-targets -- --deny warnings";
              }
            );
            cargo-fmt = craneLib.cargoFmt {
              inherit (commonArgs) pname version;
              src = checkSrc;
            };
            cargo-test = craneLib.cargoTest (
              commonArgs
              // testEnv.env
              // {
                inherit cargoArtifacts;
                inherit (testEnv) nativeCheckInputs;
                src = checkSrc;
                cargoTestExtraArgs = lib.concatStringsSep " " ([ "--workspace --" ] ++ map (t: "--skip ${t}") testEnv.skip);
              }
            );
          };

          devShell = craneLib.devShell {
            # cargo, rustc, clippy and rustfmt come with crane's shell; the build inputs of the packages
            # (pkg-config, libclang, FFmpeg) with inputsFrom.
            inputsFrom = [ packages.endoreg-media ];
            # the inference crate's tests and `cargo run -p endoreg-inference` load ONNX Runtime from here
            ORT_DYLIB_PATH = "${pkgs.onnxruntime}/lib/libonnxruntime.so";
            packages = [
              pkgs.rust-analyzer
              pkgs.ffmpeg
              pkgs.onnxruntime
              pkgs.postgresql
              pkgs.sqlite
              pkgs.age
              (pkgs.callPackage "${agenix}/pkgs/agenix.nix" { })
              pkgs.nixpkgs-fmt
              pkgs.deadnix
              pkgs.statix
            ];
          };
        in
        {
          inherit packages checks devShell;
        };
    in
    {
      packages = forAllSystems (
        pkgs:
        let
          inherit (workspace pkgs) packages;
          # CUDA is unfree; allowed for this one package set only.
          pkgsCuda = import nixpkgs {
            inherit (pkgs.stdenv.hostPlatform) system;
            config = {
              allowUnfree = true;
              cudaSupport = true;
            };
          };
        in
        packages
        // {
          default = packages.endoreg;
          # ONNX Runtime with CUDA (the CPU build is pkgs.onnxruntime, in the dev shell). The ai-deploy role's
          # inference service uses the host's own `pkgs.onnxruntime.override { cudaSupport = true; }`.
          onnxruntime-cuda = pkgsCuda.onnxruntime;
        }
      );

      overlays.default = final: _prev: (workspace final).packages;

      nixosModules = import ./nixos-modules {
        inherit agenix impermanence;
        packagesFor = pkgs: self.packages.${pkgs.stdenv.hostPlatform.system};
      };

      nixosConfigurations = import ./hosts { inherit lib self disko; };

      # The workspace's checks, the VM and evaluation tests, and every host of this system as it is deployed
      # (host-<name>: a link to its system, config.system.build.toplevel, so `nix flake check` builds what
      # `nixos-rebuild` would; a derivation of its own, which also the offline evaluation can evaluate).
      checks = forAllSystems (
        pkgs:
        (workspace pkgs).checks
        // import ./tests { inherit self pkgs lib; }
        // lib.mapAttrs'
          (name: host: lib.nameValuePair "host-${name}" (
            pkgs.runCommand "endoreg-host-${name}" { } "ln -s ${host.config.system.build.toplevel} $out"
          ))
          (
            lib.filterAttrs
              (_: host:
                let
                  # NixOS elaborates the platform; set as a string, it is the system
                  platform = host.config.nixpkgs.hostPlatform;
                in
                (platform.system or platform) == pkgs.stdenv.hostPlatform.system)
              self.nixosConfigurations
          )
      );

      devShells = forAllSystems (pkgs: {
        default = (workspace pkgs).devShell;
      });

      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);
    };
}

# How the workspace's tests run in the sandbox of `nix flake check` (checks.cargo-test in flake.nix): the files
# they see, the programs on their PATH, the variables they need and the tests skipped there. One description,
# two readers: flake.nix builds the check from it, and .ci-nix/sandbox-tests.sh reproduces it on a machine
# without Nix (each package below mapped to the machine's own, everything else hidden), so that whatever the
# sandbox lacks fails there too. A package added here needs its mapping in .ci-nix/sandbox-tests.sh.
{ pkgs }:
{
  # The source the tests see, relative to the repository root: what the packages are built from, the
  # lint configuration, the fixtures under crates/, and docs/access.md, which a test compares with the
  # permissions the registry enforces.
  files = [ "Cargo.toml" "Cargo.lock" "clippy.toml" "rustfmt.toml" "crates" "docs/access.md" ];

  # Programs the tests run, on PATH in the sandbox (besides stdenv's coreutils, sh, grep, ...).
  nativeCheckInputs = [
    # initdb and pg_ctl: the PostgreSQL variants of the registry's tests start their own cluster
    pkgs.postgresql
    # `python3`: the inference tests make ONNX models on the fly and run EndoregDB's preprocessing (Pillow)
    (pkgs.python3.withPackages (ps: [ ps.onnx ps.numpy ps.pillow ]))
  ];

  env = {
    # where initdb and pg_ctl are (crates/registry/tests/it/support/postgres.rs also searches PATH)
    ENDOREG_TEST_PG_BIN = "${pkgs.postgresql}/bin";
    # the inference tests run the demo model with nixpkgs' ONNX Runtime (CPU)
    ORT_DYLIB_PATH = "${pkgs.onnxruntime}/lib/libonnxruntime.so";
  };

  # Run by .ci/run, not in the sandbox: they read EndoregDB's base data ($ENDOREG_BASE_DATA: ../shared beside
  # the checkout, or the wheel .ci/base-data downloads; neither is in the sandbox), need moto's S3 server, compare bytes with the onnx version .ci/setup pins,
  # or drive a browser.
  skip = [
    "an_operator_session_from_migrate_to_restore"
    "the_shared_tree_imports_with_the_independently_established_result"
    "other_tree_versions_are_read_and_their_problems_named"
    "an_import_into_an_empty_database_creates_what_the_script_counted_and_again_nothing"
    "import_endoreg_counts_what_it_wrote_names_its_problems_and_fails_only_when_strict"
    "round_trip_is_lossless"
    "s3_storage_keeps_the_local_guarantees"
    "the_committed_demo_model_is_what_its_script_generates"
    # the web app in headless Chromium (crates/web-tests): Debian's chromium and chromium-driver from .ci/setup
    "the_web_app_in_a_real_browser"
    "first_load_worklist_and_timeline_stay_within_their_limits"
  ];
}

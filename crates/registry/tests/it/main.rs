//! The registry's integration tests: one binary, every test against real databases (SQLite in a temporary
//! directory and a PostgreSQL cluster the harness starts itself), through the real router.

mod support;

mod access;
mod api;
mod backup;
mod bad_input;
mod endoreg_import;
mod kb;
mod schema;

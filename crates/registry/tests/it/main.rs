//! The registry's integration tests: one binary, every test against real databases (SQLite in a temporary
//! directory and a PostgreSQL cluster the harness starts itself), through the real router.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test or benchmark reports failure

mod support;

mod access;
mod api;
mod backup;
mod bad_input;
mod connections;
mod endoreg_import;
mod jobs;
mod kb;
mod media;
mod modes;
mod schema;
mod sessions;
mod tokens;
mod uploads;
mod web;
mod worklist;

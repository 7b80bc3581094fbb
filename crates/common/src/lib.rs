//! Pieces every endoreg service and the `endoreg` CLI share.
//!
//! - [`config`]: layered, typed configuration (defaults → TOML file → `ENDOREG_*` environment).
//! - [`secret`]: secrets read from files (systemd credentials), never printable.
//! - [`logging`]: journald when the process runs under systemd, stderr otherwise.
//! - [`access`]: roles, permissions and the matrix between them.
//! - [`problem`]: RFC 9457 problem details, the error body of every HTTP API.
//! - [`api`]: the JSON types of the registry API, shared by the server and its clients.

pub mod access;
pub mod api;
pub mod config;
pub mod logging;
pub mod problem;
pub mod process;
pub mod secret;
pub mod storage;

//! The endoreg registry.

pub mod backup;
pub mod config;
pub mod db;
pub mod http;
pub mod kb;
pub mod server;
pub mod service;

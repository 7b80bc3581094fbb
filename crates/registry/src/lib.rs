//! The endoreg registry.

pub mod config;
pub mod db;
pub mod kb;


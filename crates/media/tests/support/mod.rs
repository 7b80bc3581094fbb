//! What the media integration tests share (each test binary uses part of it).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod logs;
pub mod proxy;
pub mod synthetic;

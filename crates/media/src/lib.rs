//! The endoreg media worker.

pub mod report;

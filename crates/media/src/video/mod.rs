//! Video processing with FFmpeg (through `ffmpeg-next`): probing, anonymisation, verification, frame
//! extraction, and the synthetic demo video.
//!
//! Everything here is synchronous and CPU-bound; the worker runs it on blocking threads, never on the
//! async runtime. Errors say what is wrong with the video in words a data manager understands
//! ([`MediaError`]), and say whether trying again could help ([`MediaError::is_permanent`]).

pub mod anonymise;
pub mod decode;
pub mod demo;
pub mod encode;
pub mod error;
pub mod frames;
pub mod mask;
pub mod output;
pub mod probe;

pub use error::MediaError;

use std::sync::Once;

extern crate ffmpeg_next as ffmpeg;

/// Initialises FFmpeg once per process and silences its own logging (our errors carry what matters,
/// and FFmpeg's log lines can contain file names).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if ffmpeg::init().is_ok() {
            ffmpeg::log::set_level(ffmpeg::log::Level::Fatal);
        }
    });
}

/// Threads to use for decoding and encoding: the machine's cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

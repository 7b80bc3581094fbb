//! Reading a video's frames in order, with FFmpeg's frame-threaded decoding and strict error detection:
//! a damaged packet is an error naming where it is, not a silently concealed frame.

use std::path::Path;

use ffmpeg::codec::threading;
use ffmpeg::{Dictionary, Packet, frame};
use ffmpeg_next as ffmpeg;

use super::MediaError;
use super::probe::{open_input, video_stream};

pub struct FrameSource {
    input: ffmpeg::format::context::Input,
    stream: usize,
    pub decoder: ffmpeg::decoder::Video,
    time_base: ffmpeg::Rational,
    eof_sent: bool,
    /// Frames handed out so far.
    pub frames: u64,
    /// Frames the container announces, when it does.
    expected: Option<u64>,
}

impl FrameSource {
    pub fn open(path: &Path, threads: usize) -> Result<Self, MediaError> {
        super::init();
        let input = open_input(path)?;
        let stream = video_stream(&input)?;
        let st = input.stream(stream).ok_or(MediaError::NoVideoStream)?;
        let time_base = st.time_base();
        let expected = u64::try_from(st.frames()).ok().filter(|n| *n > 0);
        let mut ctx = ffmpeg::codec::context::Context::from_parameters(st.parameters()).map_err(|e| MediaError::Corrupt(e.to_string()))?;
        if threads > 1 {
            ctx.set_threading(threading::Config { kind: threading::Type::Frame, count: threads, ..Default::default() });
        }
        let codec =
            ffmpeg::decoder::find(ctx.id()).ok_or_else(|| MediaError::UnsupportedCodec(format!("{:?}", ctx.id()).to_lowercase()))?;
        let mut opts = Dictionary::new();
        // Fail on bitstream damage instead of concealing it: a concealed frame may show what it should not.
        opts.set("err_detect", "explode");
        let decoder = ctx
            .decoder()
            .open_as_with(codec, opts)
            .and_then(|d| d.video())
            .map_err(|e| MediaError::UnsupportedCodec(format!("{}: {e}", codec.name())))?;
        if decoder.width() == 0 || decoder.height() == 0 {
            return Err(MediaError::BadDimensions { width: decoder.width(), height: decoder.height(), max: super::probe::MAX_DIMENSION });
        }
        Ok(FrameSource { input, stream, decoder, time_base, eof_sent: false, frames: 0, expected })
    }

    pub fn time_base(&self) -> ffmpeg::Rational {
        self.time_base
    }

    fn position(&self) -> String {
        match self.expected {
            Some(n) => format!("after frame {} of {n}", self.frames),
            None => format!("after frame {}", self.frames),
        }
    }

    /// An error at the end of the data: a cut-off file when frames are missing, damage otherwise.
    fn ending_error(&self, e: ffmpeg::Error) -> MediaError {
        match self.expected {
            Some(n) if self.frames < n => MediaError::Truncated(format!("the file ends after frame {} of {n}", self.frames)),
            _ => MediaError::Corrupt(format!("the last frames cannot be decoded {} ({e})", self.position())),
        }
    }

    /// Decodes the next frame into `out`; `false` at the end of the video.
    pub fn next(&mut self, out: &mut frame::Video) -> Result<bool, MediaError> {
        loop {
            match self.decoder.receive_frame(out) {
                Ok(()) => {
                    self.frames += 1;
                    return Ok(true);
                }
                Err(ffmpeg::Error::Eof) => return Ok(false),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => {}
                Err(e) if self.eof_sent => return Err(self.ending_error(e)),
                Err(e) => return Err(MediaError::Corrupt(format!("a frame cannot be decoded {} ({e})", self.position()))),
            }
            if self.eof_sent {
                return Ok(false);
            }
            let mut packet = Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {
                    if packet.stream() != self.stream {
                        continue;
                    }
                    if let Err(e) = self.decoder.send_packet(&packet) {
                        return Err(MediaError::Corrupt(format!("undecodable data {} ({e})", self.position())));
                    }
                }
                Err(ffmpeg::Error::Eof) => {
                    self.eof_sent = true;
                    if let Err(e) = self.decoder.send_eof() {
                        return Err(self.ending_error(e));
                    }
                }
                Err(e) => return Err(self.ending_error(e)),
            }
        }
    }
}

/// Decodes a whole video and counts its frames (verification of a written file). `progress` is called
/// after every frame; an error from it stops the count and is returned.
pub fn count_frames(path: &Path, progress: &mut dyn FnMut(u64) -> Result<(), MediaError>) -> Result<u64, MediaError> {
    let mut src = FrameSource::open(path, super::cores())?;
    let mut frame = frame::Video::empty();
    while src.next(&mut frame)? {
        progress(src.frames)?;
    }
    Ok(src.frames)
}

//! Processing states of videos and reports as explicit state machines: the only transitions are the ones
//! listed here, and every one is recorded.

use std::fmt;
use std::str::FromStr;

/// Where a video is in its processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoState {
    Uploaded,
    Probed,
    Anonymised,
    FramesExtracted,
    Predicted,
    Validated,
    Failed,
}

impl VideoState {
    pub const ALL: [VideoState; 7] = [
        VideoState::Uploaded,
        VideoState::Probed,
        VideoState::Anonymised,
        VideoState::FramesExtracted,
        VideoState::Predicted,
        VideoState::Validated,
        VideoState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VideoState::Uploaded => "uploaded",
            VideoState::Probed => "probed",
            VideoState::Anonymised => "anonymised",
            VideoState::FramesExtracted => "frames_extracted",
            VideoState::Predicted => "predicted",
            VideoState::Validated => "validated",
            VideoState::Failed => "failed",
        }
    }

    /// The transitions a video may make. Processing moves forward one step at a time; a new model run
    /// re-enters `predicted`; anything not yet validated may fail; a failed video may be processed again
    /// from the start.
    pub fn can_become(self, next: VideoState) -> bool {
        use VideoState::*;
        matches!(
            (self, next),
            (Uploaded, Probed)
                | (Probed, Anonymised)
                | (Anonymised, FramesExtracted)
                | (FramesExtracted, Predicted)
                | (Predicted, Predicted)
                | (Predicted, Validated)
                | (Failed, Uploaded)
        ) || (next == Failed && !matches!(self, Validated | Failed))
    }
}

/// Where a report is in its processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportState {
    Uploaded,
    TextExtracted,
    Anonymised,
    Failed,
}

impl ReportState {
    pub const ALL: [ReportState; 4] = [ReportState::Uploaded, ReportState::TextExtracted, ReportState::Anonymised, ReportState::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportState::Uploaded => "uploaded",
            ReportState::TextExtracted => "text_extracted",
            ReportState::Anonymised => "anonymised",
            ReportState::Failed => "failed",
        }
    }

    pub fn can_become(self, next: ReportState) -> bool {
        use ReportState::*;
        matches!((self, next), (Uploaded, TextExtracted) | (TextExtracted, Anonymised) | (Failed, Uploaded))
            || (next == Failed && !matches!(self, Anonymised | Failed))
    }
}

macro_rules! text_enum {
    ($t:ident, $what:literal) => {
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $t::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!("unknown {} `{s}`; states are {}", $what, $t::ALL.map(|v| v.as_str()).join(", ")))
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
text_enum!(VideoState, "video state");
text_enum!(ReportState, "report state");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_video_moves_forward_one_step_at_a_time() {
        use VideoState::*;
        let path = [Uploaded, Probed, Anonymised, FramesExtracted, Predicted, Validated];
        for w in path.windows(2) {
            assert!(w[0].can_become(w[1]), "{} -> {}", w[0], w[1]);
        }
        assert!(!Uploaded.can_become(Anonymised));
        assert!(!Probed.can_become(Uploaded));
        assert!(!Validated.can_become(Predicted));
    }

    #[test]
    fn failure_is_possible_until_validation_and_retry_starts_over() {
        use VideoState::*;
        for s in [Uploaded, Probed, Anonymised, FramesExtracted, Predicted] {
            assert!(s.can_become(Failed), "{s}");
        }
        assert!(!Validated.can_become(Failed));
        assert!(!Failed.can_become(Failed));
        assert!(Failed.can_become(Uploaded));
        assert!(!Failed.can_become(Probed));
    }

    #[test]
    fn states_parse_from_their_names_and_unknown_ones_are_listed() {
        for s in VideoState::ALL {
            assert_eq!(s.as_str().parse::<VideoState>().unwrap(), s);
        }
        let err = "done".parse::<VideoState>().unwrap_err();
        assert!(err.contains("uploaded, probed"), "{err}");
    }

    #[test]
    fn reports_follow_their_own_machine() {
        use ReportState::*;
        assert!(Uploaded.can_become(TextExtracted));
        assert!(TextExtracted.can_become(Anonymised));
        assert!(!Uploaded.can_become(Anonymised));
        assert!(!Anonymised.can_become(Failed));
    }
}

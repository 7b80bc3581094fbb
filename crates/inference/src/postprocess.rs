//! From per-frame probabilities to labelled segments: a centred moving average over a window given in
//! seconds, the contract's thresholds, and a minimum segment length.
//!
//! The average is centred on purpose: a trailing average (EndoregDB's) delays every segment by the
//! window's length, so a polyp would appear to start after it was first seen.

use endoreg_common::api::PredictedSegment;

use crate::contract::Contract;
use crate::probabilities::Probabilities;

/// Centred moving average of `values` over `window` samples (odd; shortened at the ends to the samples
/// that exist, so the first and last frames are averages of real values, not of padding).
pub fn smooth(values: &[f32], window: usize) -> Vec<f32> {
    let half = window / 2;
    if half == 0 || values.is_empty() {
        return values.to_vec();
    }
    let mut prefix = Vec::with_capacity(values.len() + 1);
    prefix.push(0.0f64);
    for v in values {
        prefix.push(prefix[prefix.len() - 1] + f64::from(*v));
    }
    (0..values.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(values.len());
            ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32
        })
        .collect()
}

/// The segments of `p` under `contract`'s post-processing, label by label in output order.
pub fn segments(p: &Probabilities, contract: &Contract) -> Vec<PredictedSegment> {
    let h = &p.header;
    let post = &contract.postprocessing;
    let step = f64::from(h.step.max(1));
    let fps = if h.fps.is_finite() && h.fps > 0.0 { h.fps } else { 25.0 };
    // Samples per window: the window's frames divided by the step, made odd so it has a centre.
    let mut window = (post.smoothing_window_s * fps / step).round().max(1.0) as usize;
    if window.is_multiple_of(2) {
        window += 1;
    }
    let last_frame = h.frames.saturating_sub(1);
    let min_frames = (post.min_segment_s * fps).round() as u64;
    let mut out = Vec::new();
    for (l, label) in h.labels.iter().enumerate() {
        if post.ignore.contains(label) {
            continue;
        }
        let column: Vec<f32> = p.column(l).collect();
        let smoothed = smooth(&column, window);
        let threshold = contract.threshold(label);
        let mut start: Option<usize> = None;
        for i in 0..=smoothed.len() {
            let on = smoothed.get(i).is_some_and(|v| *v >= threshold);
            match (on, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    start = None;
                    let first = s as u64 * u64::from(h.step.max(1));
                    // The last sampled row stands for the frames up to the next sample.
                    let last = (i as u64 * u64::from(h.step.max(1))).saturating_sub(1).min(last_frame);
                    if last >= first && last - first + 1 >= min_frames.max(1) {
                        out.push(PredictedSegment {
                            label: label.clone(),
                            start_frame: i64::try_from(first).unwrap_or(i64::MAX),
                            end_frame: i64::try_from(last).unwrap_or(i64::MAX),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probabilities::Header;

    fn contract(post: &str) -> Contract {
        Contract::parse(&format!(
            "name = \"m\"\nversion = \"1\"\nlabels = [\"a\", \"b\"]\n[input]\nwidth = 8\nheight = 8\n[postprocessing]\n{post}"
        ))
        .unwrap()
    }

    fn probabilities(a: &[f32], b: &[f32], step: u32, fps: f64, frames: u64) -> Probabilities {
        let values = a.iter().zip(b).flat_map(|(x, y)| [*x, *y]).collect();
        Probabilities {
            header: Header {
                model: "m".into(),
                version: "1".into(),
                labels: vec!["a".into(), "b".into()],
                step,
                fps,
                frames,
                rows: a.len() as u64,
                source: None,
            },
            values,
        }
    }

    #[test]
    fn a_centred_average_does_not_shift_an_edge() {
        // 0 for frames 0..49, 1 from frame 50 on: the segment starts at 50 whatever the window.
        let a: Vec<f32> = (0..100).map(|i| if i < 50 { 0.0 } else { 1.0 }).collect();
        let b = vec![0.0; 100];
        for window_s in [0.0, 0.2, 1.0, 2.0] {
            let c = contract(&format!("smoothing_window_s = {window_s}\nmin_segment_s = 0"));
            let s = segments(&probabilities(&a, &b, 1, 25.0, 100), &c);
            assert_eq!(s, vec![PredictedSegment { label: "a".into(), start_frame: 50, end_frame: 99 }], "window {window_s}");
        }
    }

    #[test]
    fn smoothing_removes_flicker_and_short_segments_are_dropped() {
        // Label a: on for 40 frames with single-frame drop-outs every 5 frames; label b: on for 5 frames.
        let a: Vec<f32> = (0..100).map(|i| if (20..60).contains(&i) && i % 5 != 0 { 0.9 } else { 0.0 }).collect();
        let b: Vec<f32> = (0..100).map(|i| if (70..75).contains(&i) { 0.9 } else { 0.0 }).collect();
        let raw = segments(&probabilities(&a, &b, 1, 25.0, 100), &contract("smoothing_window_s = 0\nmin_segment_s = 0"));
        assert!(raw.iter().filter(|s| s.label == "a").count() > 5, "{raw:?}");
        let c = contract("smoothing_window_s = 0.2\nmin_segment_s = 0.4");
        let s = segments(&probabilities(&a, &b, 1, 25.0, 100), &c);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].label, "a");
        assert!((19..=22).contains(&s[0].start_frame) && (57..=60).contains(&s[0].end_frame), "{s:?}");
    }

    #[test]
    fn rows_map_back_to_frames_with_the_step() {
        // Every 4th of 10 frames predicted (rows at frames 0, 4, 8); label b on at rows 1 and 2.
        let c = contract("smoothing_window_s = 0\nmin_segment_s = 0\n[postprocessing.thresholds]\nb = 0.3");
        let s = segments(&probabilities(&[0.0, 0.0, 0.0], &[0.1, 0.35, 0.4], 4, 25.0, 10), &c);
        assert_eq!(s, vec![PredictedSegment { label: "b".into(), start_frame: 4, end_frame: 9 }]);
        let c = contract("smoothing_window_s = 0\nmin_segment_s = 0\nignore = [\"b\"]");
        assert!(segments(&probabilities(&[0.0, 0.0, 0.0], &[1.0, 1.0, 1.0], 4, 25.0, 10), &c).is_empty());
    }

    #[test]
    fn smooth_keeps_the_mean_at_the_edges() {
        assert_eq!(smooth(&[1.0, 0.0, 0.0, 0.0], 3), vec![0.5, 1.0 / 3.0, 0.0, 0.0]);
        assert_eq!(smooth(&[], 5), Vec::<f32>::new());
    }
}

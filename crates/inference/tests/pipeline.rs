//! The decode → preprocess → model pipeline on real videos with the real demo model and ONNX Runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;

use endoreg_inference::pipeline::{self, PipelineError};
use endoreg_inference::postprocess;
use endoreg_inference::preprocess::Region;
use endoreg_inference::service::load_model;
use endoreg_inference::telemetry::Counters;
use endoreg_media::video::mask::Mask;

fn region(width: u32, height: u32) -> Region {
    Region::Rect(Mask::for_video(&common::olympus_layout(), width, height).unwrap().keep)
}

#[test]
fn every_step_th_frame_is_predicted_and_segments_come_back_in_frames() {
    let dir = tempfile::tempdir().unwrap();
    let video = common::demo_video(dir.path(), "demo.mp4", 100);
    let mut cfg = common::config(dir.path());
    let model = Mutex::new(load_model(&cfg).unwrap());
    let counters = Counters::default();

    let (all, stats) = pipeline::run(&video, region(480, 270), &model, &cfg.pipeline, &counters, &|| false).unwrap();
    assert_eq!((stats.decoded, stats.predicted, all.header.rows), (100, 100, 100));

    cfg.pipeline.step = 3;
    let (some, stats) = pipeline::run(&video, region(480, 270), &model, &cfg.pipeline, &counters, &|| false).unwrap();
    assert_eq!((stats.decoded, stats.predicted, some.header.step), (100, 34, 3));
    // Row r of the sparse run is frame 3r of the full one.
    for (r, row) in some.values.chunks(14).enumerate() {
        let full = &all.values[3 * r * 14..3 * r * 14 + 14];
        assert!(row.iter().zip(full).all(|(a, b)| (a - b).abs() < 1e-4), "row {r}: {row:?} vs {full:?}");
    }
    let contract = model.lock().unwrap().contract.clone();
    let labels = |p| postprocess::segments(p, &contract).into_iter().map(|s| (s.label, s.start_frame, s.end_frame)).collect::<Vec<_>>();
    let (full, sparse) = (labels(&all), labels(&some));
    assert_eq!(full.len(), 3, "{full:?}");
    assert_eq!(sparse.len(), 3, "{sparse:?}");
    for (a, b) in full.iter().zip(&sparse) {
        assert_eq!(a.0, b.0);
        assert!((a.1 - b.1).abs() <= 3 && (a.2 - b.2).abs() <= 3, "{full:?} vs {sparse:?}");
    }
}

#[test]
fn a_video_without_frames_or_not_a_video_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(dir.path());
    let model = Mutex::new(load_model(&cfg).unwrap());
    let counters = Counters::default();
    let run = |path: &std::path::Path| pipeline::run(path, Region::Whole, &model, &cfg.pipeline, &counters, &|| false);

    // A container written without a single frame (MP4 then keeps no stream either).
    let empty = dir.path().join("empty.mp4");
    let spec = endoreg_media::video::demo::DemoSpec::olympus(480, 270, 0);
    match endoreg_media::video::demo::generate(&empty, &spec) {
        Ok(_) => {
            let e = run(&empty).unwrap_err();
            let m = e.to_string();
            assert!(m.contains("has no frames") || m.contains("has no video stream"), "{m}");
            assert!(e.is_permanent(), "{e}");
        }
        Err(e) => panic!("an empty video could not be written for the test: {e}"),
    }

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "these are notes, not a video").unwrap();
    let e = run(&text).unwrap_err();
    assert!(matches!(e, PipelineError::Media(_)) && e.is_permanent(), "{e}");
    assert!(e.to_string().contains("not a readable video"), "{e}");

    let e = run(&dir.path().join("missing.mp4")).unwrap_err();
    assert!(e.to_string().contains("missing.mp4"), "{e}");
}

#[test]
fn a_crop_region_outside_the_frames_fails_the_run_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let video = common::demo_video(dir.path(), "demo.mp4", 20);
    let cfg = common::config(dir.path());
    let model = Mutex::new(load_model(&cfg).unwrap());
    let outside = Region::Rect(endoreg_media::video::mask::Rect { x: 400, y: 0, w: 200, h: 100 });
    let e = pipeline::run(&video, outside, &model, &cfg.pipeline, &Counters::default(), &|| false).unwrap_err();
    assert!(e.to_string().contains("does not fit in the 480x270 picture"), "{e}");
}

#[test]
fn a_cancelled_run_stops_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let video = common::demo_video(dir.path(), "demo.mp4", 50);
    let cfg = common::config(dir.path());
    let model = Mutex::new(load_model(&cfg).unwrap());
    let e = pipeline::run(&video, region(480, 270), &model, &cfg.pipeline, &Counters::default(), &|| true).unwrap_err();
    assert!(matches!(e, PipelineError::Cancelled), "{e}");
}

//! The anonymisation check on rendered frames: black areas take the fast path, text a wrong layout left
//! behind is found with the identity's tokens, and non-text structure is told apart from text.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

mod common;

use common::*;
use endoreg_ocr::{Engine, EngineConfig, Finding, InspectOptions, LumaImage, OcrError, Rect, TokenSet, count_bright};

fn engine() -> Engine {
    Engine::new(&EngineConfig::default()).expect("Tesseract 5 with deu and eng (.ci/setup)")
}

/// The identity candidate's tokens, as the media worker would pass them.
fn tokens() -> TokenSet {
    TokenSet::new(&["Erika", "Mustermann", "12.08.1961", "Jörg-Ünal", "Straßburger-Öztürk"])
}

/// The area left of a 1080p endoscope image, and the same at 540p.
const AREA_1080: Rect = Rect::new(0, 0, 600, 1080);
const AREA_540: Rect = Rect::new(0, 0, 300, 540);

#[test]
fn black_and_compressed_black_areas_are_black_without_ocr() {
    let mut engine = engine();
    let frame = LumaImage::filled(1920, 1080, BLACK).unwrap();
    // Blanked areas after encoding: black with noise of a few levels.
    let noisy = degrade(&frame, DEGRADED, 7);
    for img in [&frame, &noisy] {
        let i = engine.inspect(&img.as_plane(), AREA_1080, &tokens(), &InspectOptions::default()).unwrap();
        assert_eq!(i.finding, Finding::Black);
        assert!(i.matched_tokens.is_empty());
    }
    // The pixel check alone is cheap enough for every sampled frame: no engine needed.
    assert_eq!(count_bright(&noisy.as_plane(), AREA_1080, 40).unwrap(), 0);
}

#[test]
fn text_a_wrong_layout_left_behind_is_found_with_its_tokens() {
    let mut engine = engine();
    let f = font(DEJAVU_SANS);
    let texts = ["MUSTERMANN, ERIKA", "12.08.1961", "03.02.2024 14:32"];
    let (mut frame, rects) = overlay(1920, 1080, &f, &texts, 40, 200, 24.0);
    // The layout blanked the name field but not the birth date.
    frame.fill_rect(rects[0], BLACK);
    let i = engine.inspect(&frame.as_plane(), AREA_1080, &tokens(), &InspectOptions::default()).unwrap();
    assert!(matches!(i.finding, Finding::Text { characters, .. } if characters >= 8), "{i:?}");
    assert_eq!(i.matched_tokens, vec![2], "only the birth date is left");
    // Nothing blanked at all: every token on the frame is found.
    let (frame, _) = overlay(1920, 1080, &f, &texts, 40, 200, 24.0);
    let i = engine.inspect(&frame.as_plane(), AREA_1080, &tokens(), &InspectOptions::default()).unwrap();
    assert_eq!(i.matched_tokens, vec![0, 1, 2]);
}

#[test]
fn tokens_are_found_in_degraded_frames_at_the_smallest_overlay_sizes() {
    let mut engine = engine();
    let texts = ["MUSTERMANN, ERIKA", "geb. 12.08.1961", "Straßburger-Öztürk, Jörg-Ünal"];
    for (fname, f) in [("mono", font(DEJAVU_SANS_MONO)), ("sans", font(DEJAVU_SANS))] {
        for (w, h, cap, area) in [(1920, 1080, 20.0, AREA_1080), (960, 540, 10.0, AREA_540)] {
            let (frame, _) = overlay(w, h, &f, &texts, 20, h / 5, cap);
            let frame = degrade(&frame, DEGRADED, u64::from(h));
            let i = engine.inspect(&frame.as_plane(), area, &tokens(), &InspectOptions::default()).unwrap();
            assert!(matches!(i.finding, Finding::Text { .. }), "{fname} {h}p: {i:?}");
            assert_eq!(i.matched_tokens, vec![0, 1, 2, 3, 4], "{fname} {h}p cap {cap}");
        }
    }
}

#[test]
fn transliterated_overlays_match_tokens_with_umlauts() {
    let mut engine = engine();
    let f = font(DEJAVU_SANS_MONO);
    let (frame, _) = overlay(960, 540, &f, &["STRASSBURGER-OEZTUERK", "JOERG-UENAL"], 20, 100, 12.0);
    let i = engine.inspect(&frame.as_plane(), AREA_540, &tokens(), &InspectOptions::default()).unwrap();
    assert_eq!(i.matched_tokens, vec![3, 4]);
}

#[test]
fn bright_structure_without_text_is_structure_not_text() {
    let mut engine = engine();
    let mut frame = LumaImage::filled(1920, 1080, BLACK).unwrap();
    // A bar and a box outline, like a status indicator or a frame around the image.
    frame.fill_rect(Rect::new(100, 300, 300, 24), 200);
    for (x, y, w, h) in [(80, 500, 400, 3), (80, 700, 400, 3), (80, 500, 3, 203), (477, 500, 3, 203)] {
        frame.fill_rect(Rect::new(x, y, w, h), 180);
    }
    let i = engine.inspect(&frame.as_plane(), AREA_1080, &tokens(), &InspectOptions::default()).unwrap();
    assert!(matches!(i.finding, Finding::Structure { bright_pixels } if bright_pixels > 7000), "{i:?}");
    assert!(i.matched_tokens.is_empty());
    // Faint compression noise above black but below the contrast that could be text: structure, no OCR text.
    let mut faint = LumaImage::filled(960, 540, BLACK).unwrap();
    faint.fill_rect(Rect::new(10, 10, 50, 50), 45);
    let i = engine.inspect(&faint.as_plane(), AREA_540, &tokens(), &InspectOptions::default()).unwrap();
    assert_eq!(i.finding, Finding::Structure { bright_pixels: 2500 });
}

#[test]
fn a_region_off_the_frame_is_an_error() {
    let mut engine = engine();
    let frame = LumaImage::filled(960, 540, BLACK).unwrap();
    let err = engine.inspect(&frame.as_plane(), Rect::new(0, 540, 10, 10), &tokens(), &InspectOptions::default()).unwrap_err();
    assert!(matches!(err, OcrError::RegionOutside { .. }), "{err:?}");
}

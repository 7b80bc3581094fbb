//! Videos: metadata, processing state (an explicit state machine with a history) and frame sets.

use chrono::{DateTime, Utc};

use endoreg_common::api::{
    FrameSet, MAX_FRAMES, Page, Paging, StateChange, StateEvent, Video, VideoCreate, VideoFilter, VideoMetadata, VideoPatch,
};
use endoreg_common::storage::keys;

use crate::db::Db;
use crate::db::exec::{One, Tx};
use crate::params;

use super::state::VideoState;
use super::text::{self, Kind};
use super::{Checks, Filters, Result, ServiceError, VersionProbe, check_key, check_range, explain_version_miss, is_sha256, terms};

#[derive(sqlx::FromRow)]
struct VideoRow {
    id: i64,
    center: String,
    processor: Option<String>,
    patient_examination_id: Option<i64>,
    sha256: String,
    size_bytes: Option<i64>,
    state: String,
    state_detail: Option<String>,
    state_changed_at: DateTime<Utc>,
    container: Option<String>,
    codec: Option<String>,
    width: Option<i64>,
    height: Option<i64>,
    fps: Option<f64>,
    duration_s: Option<f64>,
    frame_count: Option<i64>,
    rotation: Option<i64>,
    raw_key: Option<String>,
    anonymised_key: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl VideoRow {
    fn into_api(self, frame_sets: Vec<FrameSet>) -> Video {
        Video {
            id: self.id,
            center: self.center,
            processor: self.processor,
            patient_examination_id: self.patient_examination_id,
            sha256: self.sha256,
            size_bytes: self.size_bytes,
            state: self.state,
            state_detail: self.state_detail,
            state_changed_at: self.state_changed_at,
            metadata: VideoMetadata {
                container: self.container,
                codec: self.codec,
                width: self.width,
                height: self.height,
                fps: self.fps,
                duration_s: self.duration_s,
                frame_count: self.frame_count,
                rotation: self.rotation,
            },
            raw_key: self.raw_key,
            anonymised_key: self.anonymised_key,
            frame_sets,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const SELECT: &str = "SELECT v.id, c.name AS center, p.name AS processor, v.patient_examination_id, v.sha256, v.size_bytes, v.state, v.state_detail, \
     v.state_changed_at, v.container, v.codec, v.width, v.height, v.fps, v.duration_s, v.frame_count, v.rotation, v.raw_key, v.anonymised_key, \
     v.version, v.created_at, v.updated_at \
     FROM video v JOIN center c ON c.id = v.center_id LEFT JOIN endoscopy_processor p ON p.id = v.endoscopy_processor_id";

#[derive(sqlx::FromRow)]
struct FrameSetRow {
    source: String,
    first_frame: i64,
    frame_count: i64,
    step: i64,
    format: String,
    storage_prefix: String,
}

impl From<FrameSetRow> for FrameSet {
    fn from(r: FrameSetRow) -> Self {
        FrameSet {
            source: r.source,
            first_frame: r.first_frame,
            frame_count: r.frame_count,
            step: r.step,
            format: r.format,
            storage_prefix: r.storage_prefix,
        }
    }
}

pub async fn get(db: &Db, id: i64) -> Result<Video> {
    let row: Option<VideoRow> = db.fetch_optional(&format!("{SELECT} WHERE v.id = $1"), params![id]).await?;
    let row = row.ok_or_else(|| ServiceError::not_found(format!("video {id}")))?;
    let sets: Vec<FrameSetRow> = db
        .fetch_all(
            "SELECT source, first_frame, frame_count, step, format, storage_prefix FROM video_frame_set WHERE video_id = $1 ORDER BY source",
            params![id],
        )
        .await?;
    Ok(row.into_api(sets.into_iter().map(FrameSet::from).collect()))
}

pub async fn list(db: &Db, filter: &VideoFilter, paging: &Paging) -> Result<Page<Video>> {
    let mut checks = Checks::default();
    if let Some(s) = &filter.state
        && let Err(e) = s.parse::<VideoState>()
    {
        checks.add("/state", e);
    }
    checks.finish()?;
    let mut f = Filters::default();
    if let Some(c) = &filter.center {
        f.add("c.name = ?", c);
    }
    if let Some(s) = &filter.state {
        f.add("v.state = ?", s);
    }
    if let Some(p) = filter.patient_examination_id {
        f.add("v.patient_examination_id = ?", p);
    }
    let count = "SELECT COUNT(*) FROM video v JOIN center c ON c.id = v.center_id";
    // Lists leave frame sets out (one query per page, not per video); GET of a video includes them.
    super::page(db, SELECT, count, &f, "v.id", paging, |r: VideoRow| r.into_api(Vec::new())).await
}

/// Longest container or codec name.
pub const CODE_MAX_CHARS: usize = 64;

/// Longest reason given with a state change.
pub const DETAIL_MAX_CHARS: usize = 2_000;

/// Checks a state change's reason: free text, required (not blank) for `failed`.
pub fn check_detail(checks: &mut Checks, detail: Option<&str>, failed: bool) {
    text::check_opt(checks, "/detail", detail, Kind::FreeText, DETAIL_MAX_CHARS);
    if failed && detail.is_none_or(|d| d.trim().is_empty()) {
        checks.add("/detail", "a failure needs a reason a data manager can act on");
    }
}

fn check_metadata(checks: &mut Checks, m: &VideoMetadata) {
    let positive = [("width", m.width), ("height", m.height)];
    for (name, v) in positive {
        if v.is_some_and(|v| v <= 0 || v > 16384) {
            checks.add(&format!("/metadata/{name}"), "must be between 1 and 16384");
        }
    }
    if m.fps.is_some_and(|f| !(f > 0.0 && f <= 1000.0)) {
        checks.add("/metadata/fps", "must be above 0 and at most 1000");
    }
    if m.duration_s.is_some_and(|d| !(d >= 0.0 && d.is_finite())) {
        checks.add("/metadata/duration_s", "must be a finite number of seconds, at least 0");
    }
    if let Some(n) = m.frame_count {
        check_range(checks, "/metadata/frame_count", n, 0..=MAX_FRAMES);
    }
    text::check_opt(checks, "/metadata/container", m.container.as_deref(), Kind::SingleLine, CODE_MAX_CHARS);
    text::check_opt(checks, "/metadata/codec", m.codec.as_deref(), Kind::SingleLine, CODE_MAX_CHARS);
    if m.rotation.is_some_and(|r| ![0, 90, 180, 270].contains(&r)) {
        checks.add("/metadata/rotation", "must be 0, 90, 180 or 270");
    }
}

pub async fn create(db: &Db, input: &VideoCreate) -> Result<Video> {
    let new = check_create(db, input).await?;
    let mut tx = db.begin().await?;
    let id = create_in(&mut tx, &new).await?;
    tx.commit().await?;
    get(db, id).await
}

/// A video [`check_create`] accepted, its references resolved.
pub struct NewVideo<'a> {
    input: &'a VideoCreate,
    center: Option<i64>,
    processor: Option<i64>,
}

/// The checks of [`create`]. They read through the pool, so they run before the transaction [`create_in`]
/// writes in: with one pooled connection, a check waiting for a connection the transaction holds would wait
/// forever.
pub async fn check_create<'a>(db: &Db, input: &'a VideoCreate) -> Result<NewVideo<'a>> {
    let mut checks = Checks::default();
    let center = terms::require(db, &mut checks, "center", &input.center, "/center").await?;
    let processor = match &input.processor {
        Some(p) => terms::require(db, &mut checks, "endoscopy_processor", p, "/processor").await?,
        None => None,
    };
    super::examinations::check_reference(db, &mut checks, input.patient_examination_id).await?;
    if !is_sha256(&input.sha256) {
        checks.add("/sha256", "must be 64 lowercase hexadecimal characters");
    }
    if input.size_bytes.is_some_and(|s| s < 0) {
        checks.add("/size_bytes", "must not be negative");
    }
    if let Some(key) = &input.raw_key
        && is_sha256(&input.sha256)
    {
        check_key(&mut checks, "/raw_key", key, &keys::raw(&input.sha256));
    }
    checks.finish()?;
    Ok(NewVideo { input, center, processor })
}

/// Inserts a checked video in the caller's transaction, so that an upload writes the video, its identity
/// and its job together or not at all. `Conflict` when the content is registered already.
pub async fn create_in(tx: &mut Tx, new: &NewVideo<'_>) -> Result<i64> {
    let NewVideo { input, center, processor } = *new;
    let now = super::now();
    let inserted: Option<One<i64>> = tx
        .fetch_optional(
            "INSERT INTO video (center_id, endoscopy_processor_id, patient_examination_id, sha256, size_bytes, state, state_changed_at, raw_key, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'uploaded', $6, $7, 1, $6, $6) ON CONFLICT (sha256) DO NOTHING RETURNING id",
            params![center, processor, input.patient_examination_id, &input.sha256, input.size_bytes, now, input.raw_key.clone()],
        )
        .await?;
    let Some(One(id)) = inserted else {
        let One(existing): One<i64> = tx.fetch_one("SELECT id FROM video WHERE sha256 = $1", params![&input.sha256]).await?;
        return Err(ServiceError::Conflict(format!("this video is already registered as video {existing}")));
    };
    tx.execute(
        "INSERT INTO video_state_event (video_id, from_state, to_state, detail, at) VALUES ($1, NULL, 'uploaded', NULL, $2)",
        params![id, now],
    )
    .await?;
    Ok(id)
}

pub async fn update(db: &Db, id: i64, expected_version: i64, patch: &VideoPatch) -> Result<Video> {
    let current = get(db, id).await?;
    let mut checks = Checks::default();
    let processor_name = match &patch.processor {
        Some(p) => p.clone(),
        None => current.processor.clone(),
    };
    let processor = match &processor_name {
        Some(p) => terms::require(db, &mut checks, "endoscopy_processor", p, "/processor").await?,
        None => None,
    };
    let exam = match patch.patient_examination_id {
        Some(e) => e,
        None => current.patient_examination_id,
    };
    super::examinations::check_reference(db, &mut checks, patch.patient_examination_id.flatten()).await?;
    let m = patch.metadata.clone().unwrap_or(current.metadata.clone());
    check_metadata(&mut checks, &m);
    if let Some(key) = &patch.raw_key {
        check_key(&mut checks, "/raw_key", key, &keys::raw(&current.sha256));
    }
    if let Some(key) = &patch.anonymised_key
        && !keys::is_anonymised_video(key)
    {
        checks.add("/anonymised_key", "must be `anonymised/<aa>/<sha256>.mp4`, the key of the anonymised video's content");
    }
    checks.finish()?;
    let n = db
        .execute(
            "UPDATE video SET endoscopy_processor_id = $1, patient_examination_id = $2, container = $3, codec = $4, width = $5, height = $6, \
             fps = $7, duration_s = $8, frame_count = $9, rotation = $10, raw_key = $11, anonymised_key = $12, version = version + 1, updated_at = $13 \
             WHERE id = $14 AND version = $15",
            params![
                processor,
                exam,
                m.container,
                m.codec,
                m.width,
                m.height,
                m.fps,
                m.duration_s,
                m.frame_count,
                m.rotation,
                patch.raw_key.clone().or(current.raw_key),
                patch.anonymised_key.clone().or(current.anonymised_key),
                super::now(),
                id,
                expected_version
            ],
        )
        .await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Db(db), "video", id, "video").await?);
    }
    get(db, id).await
}

/// Moves a video to another state if the state machine allows it, recording the transition.
pub async fn change_state(db: &Db, id: i64, expected_version: i64, change: &StateChange) -> Result<Video> {
    let next: VideoState = change.state.parse().map_err(|e: String| ServiceError::invalid("/state", e))?;
    let mut checks = Checks::default();
    check_detail(&mut checks, change.detail.as_deref(), next == VideoState::Failed);
    checks.finish()?;
    let now = super::now();
    let mut tx = db.begin().await?;
    let row: Option<(String, i64)> = tx.fetch_optional("SELECT state, version FROM video WHERE id = $1", params![id]).await?;
    let Some((state, version)) = row else {
        return Err(ServiceError::not_found(format!("video {id}")));
    };
    if version != expected_version {
        return Err(ServiceError::VersionMismatch { current: version });
    }
    let current: VideoState = state.parse().map_err(|e: String| ServiceError::Conflict(format!("stored state is invalid: {e}")))?;
    if !current.can_become(next) {
        return Err(ServiceError::Conflict(format!("video {id} is {current} and cannot become {next}")));
    }
    tx.execute(
        "UPDATE video SET state = $1, state_detail = $2, state_changed_at = $3, version = version + 1, updated_at = $3 WHERE id = $4",
        params![next.as_str(), change.detail.clone(), now, id],
    )
    .await?;
    tx.execute(
        "INSERT INTO video_state_event (video_id, from_state, to_state, detail, at) VALUES ($1, $2, $3, $4, $5)",
        params![id, current.as_str(), next.as_str(), change.detail.clone(), now],
    )
    .await?;
    tx.commit().await?;
    get(db, id).await
}

pub async fn events(db: &Db, id: i64) -> Result<Vec<StateEvent>> {
    get(db, id).await?;
    type Row = (Option<String>, String, Option<String>, DateTime<Utc>);
    let rows: Vec<Row> =
        db.fetch_all("SELECT from_state, to_state, detail, at FROM video_state_event WHERE video_id = $1 ORDER BY id", params![id]).await?;
    Ok(rows.into_iter().map(|(from_state, to_state, detail, at)| StateEvent { from_state, to_state, detail, at }).collect())
}

/// Records (or replaces) the frames extracted from one source of a video.
pub async fn put_frame_set(db: &Db, id: i64, set: &FrameSet) -> Result<Video> {
    let video = get(db, id).await?;
    let mut checks = Checks::default();
    if !["raw", "anonymised"].contains(&set.source.as_str()) {
        checks.add("/source", "must be `raw` or `anonymised`");
    }
    if !["jpeg", "png"].contains(&set.format.as_str()) {
        checks.add("/format", "must be `jpeg` or `png`");
    }
    check_range(&mut checks, "/first_frame", set.first_frame, 0..=MAX_FRAMES - 1);
    check_range(&mut checks, "/frame_count", set.frame_count, 0..=MAX_FRAMES);
    check_range(&mut checks, "/step", set.step, 1..=MAX_FRAMES);
    if checks.is_empty() && set.frame_count > 0 {
        // first_frame + (frame_count - 1) × step, which the bounds above keep far from overflowing; checked
        // all the same, so that a change of bounds cannot make it wrap.
        let last = (set.frame_count - 1).checked_mul(set.step).and_then(|n| n.checked_add(set.first_frame));
        match (last, video.metadata.frame_count) {
            (Some(last), Some(total)) if last >= total => {
                checks.add("/frame_count", format!("the last frame ({last}) lies beyond the video's {total} frames"));
            }
            (Some(last), _) if last < MAX_FRAMES => {}
            _ => checks.add(
                "/frame_count",
                format!("the last frame, first_frame + (frame_count - 1) × step, lies beyond frame {}", MAX_FRAMES - 1),
            ),
        }
    }
    if ["raw", "anonymised"].contains(&set.source.as_str()) {
        check_key(&mut checks, "/storage_prefix", &set.storage_prefix, &keys::frames(&video.sha256, &set.source));
    }
    checks.finish()?;
    db.execute(
        "INSERT INTO video_frame_set (video_id, source, first_frame, frame_count, step, format, storage_prefix, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (video_id, source) DO UPDATE SET first_frame = excluded.first_frame, frame_count = excluded.frame_count, \
         step = excluded.step, format = excluded.format, storage_prefix = excluded.storage_prefix, created_at = excluded.created_at",
        params![id, &set.source, set.first_frame, set.frame_count, set.step, &set.format, &set.storage_prefix, super::now()],
    )
    .await?;
    get(db, id).await
}

//! Label video segments: a label on a range of a video's frames, from a source (annotation, prediction)
//! and, for predictions, a model version.

use chrono::{DateTime, Utc};

use endoreg_common::api::{LabelSegment, LabelSegmentIn, MAX_FRAMES, SegmentFilter};

use crate::db::Db;
use crate::db::exec::One;
use crate::params;

use super::{Checks, Filters, Result, ServiceError, VersionProbe, check_range, explain_version_miss, terms};

#[derive(sqlx::FromRow)]
struct SegmentRow {
    id: i64,
    video_id: i64,
    label: String,
    start_frame: i64,
    end_frame: i64,
    source: Option<String>,
    model_version_id: Option<i64>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<SegmentRow> for LabelSegment {
    fn from(r: SegmentRow) -> Self {
        LabelSegment {
            id: r.id,
            video_id: r.video_id,
            label: r.label,
            start_frame: r.start_frame,
            end_frame: r.end_frame,
            source: r.source,
            model_version_id: r.model_version_id,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SELECT: &str = "SELECT s.id, s.video_id, l.name AS label, s.start_frame, s.end_frame, src.name AS source, s.ai_model_version_id AS model_version_id, \
     s.version, s.created_at, s.updated_at \
     FROM label_video_segment s JOIN label l ON l.id = s.label_id LEFT JOIN information_source src ON src.id = s.information_source_id";

pub async fn get(db: &Db, id: i64) -> Result<LabelSegment> {
    let row: Option<SegmentRow> = db.fetch_optional(&format!("{SELECT} WHERE s.id = $1"), params![id]).await?;
    row.map(LabelSegment::from).ok_or_else(|| ServiceError::not_found(format!("label segment {id}")))
}

/// A video's segments, optionally of one label and one source, ordered by label then start frame.
pub async fn list(db: &Db, video_id: i64, filter: &SegmentFilter) -> Result<Vec<LabelSegment>> {
    let exists: Option<One<i64>> = db.fetch_optional("SELECT id FROM video WHERE id = $1", params![video_id]).await?;
    if exists.is_none() {
        return Err(ServiceError::not_found(format!("video {video_id}")));
    }
    let mut f = Filters::default();
    f.add("s.video_id = ?", video_id);
    if let Some(l) = &filter.label {
        if terms::id_of(db, "label", l).await?.is_none() {
            return Err(ServiceError::invalid("/label", format!("unknown label: `{l}`")));
        }
        f.add("l.name = ?", l);
    }
    if let Some(s) = &filter.source {
        f.add("src.name = ?", s);
    }
    let rows: Vec<SegmentRow> = db.fetch_all(&format!("{SELECT}{} ORDER BY l.name, s.start_frame, s.id", f.sql()), f.params()).await?;
    Ok(rows.into_iter().map(LabelSegment::from).collect())
}

/// Checks a segment's frames, `start` to `end` inclusive, of a video of `frame_count` frames (when known);
/// problems under `pointer`.
pub fn check_frames(checks: &mut Checks, pointer: &str, start: i64, end: i64, frame_count: Option<i64>) {
    let before = checks.len();
    check_range(checks, &format!("{pointer}/start_frame"), start, 0..=MAX_FRAMES - 1);
    check_range(checks, &format!("{pointer}/end_frame"), end, 0..=MAX_FRAMES - 1);
    if checks.len() > before {
        return;
    }
    if end < start {
        checks.add(&format!("{pointer}/end_frame"), format!("must be at least start_frame ({start})"));
    }
    match frame_count {
        Some(0) => checks.add(&format!("{pointer}/end_frame"), "the video has no frames"),
        Some(n) if end >= n => {
            checks.add(&format!("{pointer}/end_frame"), format!("the video has {n} frames (0 to {})", n.saturating_sub(1)))
        }
        _ => {}
    }
}

struct Valid {
    label: i64,
    source: Option<i64>,
}

async fn validate(db: &Db, video_id: i64, input: &LabelSegmentIn) -> Result<Valid> {
    let mut checks = Checks::default();
    let frames: Option<(Option<i64>,)> = db.fetch_optional("SELECT frame_count FROM video WHERE id = $1", params![video_id]).await?;
    let Some((frame_count,)) = frames else {
        return Err(ServiceError::not_found(format!("video {video_id}")));
    };
    let label = terms::require(db, &mut checks, "label", &input.label, "/label").await?;
    let source = match &input.source {
        Some(s) => terms::require(db, &mut checks, "information_source", s, "/source").await?,
        None => None,
    };
    check_frames(&mut checks, "", input.start_frame, input.end_frame, frame_count);
    if let Some(mv) = input.model_version_id {
        let found: Option<One<i64>> = db.fetch_optional("SELECT id FROM ai_model_version WHERE id = $1", params![mv]).await?;
        if found.is_none() {
            checks.add("/model_version_id", format!("no model version {mv}"));
        }
    }
    checks.finish()?;
    Ok(Valid { label: label.unwrap_or_default(), source })
}

pub async fn create(db: &Db, video_id: i64, input: &LabelSegmentIn) -> Result<LabelSegment> {
    let v = validate(db, video_id, input).await?;
    let now = super::now();
    let One(id): One<i64> = db
        .fetch_one(
            "INSERT INTO label_video_segment (video_id, label_id, start_frame, end_frame, information_source_id, ai_model_version_id, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) RETURNING id",
            params![video_id, v.label, input.start_frame, input.end_frame, v.source, input.model_version_id, now],
        )
        .await?;
    get(db, id).await
}

pub async fn replace(db: &Db, id: i64, expected_version: i64, input: &LabelSegmentIn) -> Result<LabelSegment> {
    let current = get(db, id).await?;
    let v = validate(db, current.video_id, input).await?;
    let n = db
        .execute(
            "UPDATE label_video_segment SET label_id = $1, start_frame = $2, end_frame = $3, information_source_id = $4, ai_model_version_id = $5, \
             version = version + 1, updated_at = $6 WHERE id = $7 AND version = $8",
            params![v.label, input.start_frame, input.end_frame, v.source, input.model_version_id, super::now(), id, expected_version],
        )
        .await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Db(db), "label_video_segment", id, "label segment").await?);
    }
    get(db, id).await
}

pub async fn delete(db: &Db, id: i64, expected_version: i64) -> Result<()> {
    let n = db.execute("DELETE FROM label_video_segment WHERE id = $1 AND version = $2", params![id, expected_version]).await?;
    if n == 0 {
        return Err(explain_version_miss(VersionProbe::Db(db), "label_video_segment", id, "label segment").await?);
    }
    Ok(())
}

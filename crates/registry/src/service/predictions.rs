//! AI model versions and a video's predictions: per-frame probabilities stored as an object, and the label
//! segments derived from them, replaced together so a re-run never duplicates segments.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use endoreg_common::api::{AiModelVersion, AiModelVersionIn, MAX_FRAMES, Prediction, PredictionIn};
use endoreg_common::storage::keys;

use crate::db::Db;
use crate::db::exec::{One, Param};
use crate::params;

use super::text::{self, Kind};
use super::{Checks, Result, ServiceError, check_key, check_range, terms};

#[derive(sqlx::FromRow)]
struct VersionRow {
    id: i64,
    model: String,
    version: String,
    label_set: Option<String>,
    metadata: Json<Value>,
    created_at: DateTime<Utc>,
}

impl From<VersionRow> for AiModelVersion {
    fn from(r: VersionRow) -> Self {
        AiModelVersion {
            id: r.id,
            model: r.model,
            version: r.version,
            label_set: r.label_set,
            metadata: r.metadata.0,
            created_at: r.created_at,
        }
    }
}

const VERSION_SELECT: &str = "SELECT v.id, m.name AS model, v.version, ls.name AS label_set, v.metadata, v.created_at \
     FROM ai_model_version v JOIN ai_model m ON m.id = v.ai_model_id LEFT JOIN label_set ls ON ls.id = v.label_set_id";

pub async fn version(db: &Db, id: i64) -> Result<AiModelVersion> {
    let row: Option<VersionRow> = db.fetch_optional(&format!("{VERSION_SELECT} WHERE v.id = $1"), params![id]).await?;
    row.map(AiModelVersion::from).ok_or_else(|| ServiceError::not_found(format!("model version {id}")))
}

pub async fn versions(db: &Db) -> Result<Vec<AiModelVersion>> {
    let rows: Vec<VersionRow> = db.fetch_all(&format!("{VERSION_SELECT} ORDER BY m.name, v.id"), vec![]).await?;
    Ok(rows.into_iter().map(AiModelVersion::from).collect())
}

/// Longest model version name.
pub const VERSION_MAX_CHARS: usize = 100;

/// Registers a model version; the same model and version return the existing record (its label set and
/// metadata must agree: a version is immutable once predictions refer to it).
pub async fn register_version(db: &Db, input: &AiModelVersionIn) -> Result<AiModelVersion> {
    let mut checks = Checks::default();
    let model = terms::require(db, &mut checks, "ai_model", &input.model, "/model").await?;
    let label_set = match &input.label_set {
        Some(l) => terms::require(db, &mut checks, "label_set", l, "/label_set").await?,
        None => None,
    };
    text::check(&mut checks, "/version", &input.version, Kind::SingleLine, VERSION_MAX_CHARS);
    if !(input.metadata.is_object() || input.metadata.is_null()) {
        checks.add("/metadata", "must be a JSON object");
    }
    checks.finish()?;
    let model = model.unwrap_or_default();
    let existing: Option<VersionRow> = db
        .fetch_optional(&format!("{VERSION_SELECT} WHERE v.ai_model_id = $1 AND v.version = $2"), params![model, input.version.trim()])
        .await?;
    if let Some(v) = existing {
        if v.label_set != input.label_set {
            return Err(ServiceError::Conflict(format!(
                "{} version {} is registered with label set {:?}; a new label set needs a new version",
                input.model, input.version, v.label_set
            )));
        }
        return Ok(v.into());
    }
    let metadata = if input.metadata.is_null() { Value::Object(Default::default()) } else { input.metadata.clone() };
    let One(id): One<i64> = db
        .fetch_one(
            "INSERT INTO ai_model_version (ai_model_id, version, label_set_id, metadata, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (ai_model_id, version) DO UPDATE SET version = excluded.version RETURNING id",
            params![model, input.version.trim(), label_set, metadata, super::now()],
        )
        .await?;
    version(db, id).await
}

#[derive(sqlx::FromRow)]
struct PredictionRow {
    video_id: i64,
    ai_model_version_id: i64,
    storage_key: String,
    frame_count: i64,
    step: i64,
    labels: Json<Vec<String>>,
    created_at: DateTime<Utc>,
    segments: i64,
}

impl From<PredictionRow> for Prediction {
    fn from(r: PredictionRow) -> Self {
        Prediction {
            video_id: r.video_id,
            model_version_id: r.ai_model_version_id,
            storage_key: r.storage_key,
            frame_count: r.frame_count,
            step: r.step,
            labels: r.labels.0,
            segments: r.segments,
            created_at: r.created_at,
        }
    }
}

const PREDICTION_SELECT: &str = "SELECT p.video_id, p.ai_model_version_id, p.storage_key, p.frame_count, p.step, p.labels, p.created_at, \
     (SELECT COUNT(*) FROM label_video_segment s WHERE s.video_id = p.video_id AND s.ai_model_version_id = p.ai_model_version_id) AS segments \
     FROM video_prediction p";

pub async fn predictions(db: &Db, video: i64) -> Result<Vec<Prediction>> {
    super::videos::get(db, video).await?;
    let rows: Vec<PredictionRow> =
        db.fetch_all(&format!("{PREDICTION_SELECT} WHERE p.video_id = $1 ORDER BY p.ai_model_version_id"), params![video]).await?;
    Ok(rows.into_iter().map(Prediction::from).collect())
}

/// Records a video's predictions by a model version and replaces that version's segments, in one
/// transaction.
pub async fn record(db: &Db, video: i64, model_version: i64, input: &PredictionIn) -> Result<Prediction> {
    let v = super::videos::get(db, video).await?;
    version(db, model_version).await?;
    let mut checks = Checks::default();
    check_key(&mut checks, "/storage_key", &input.storage_key, &keys::predictions(&v.sha256, model_version));
    check_range(&mut checks, "/frame_count", input.frame_count, 0..=MAX_FRAMES);
    check_range(&mut checks, "/step", input.step, 1..=MAX_FRAMES);
    if input.labels.is_empty() {
        checks.add("/labels", "name the labels of the stored probabilities");
    }
    let mut label_ids = std::collections::HashMap::new();
    for (i, l) in input.labels.iter().enumerate() {
        if let Some(id) = terms::require(db, &mut checks, "label", l, &format!("/labels/{i}")).await? {
            label_ids.insert(l.clone(), id);
        }
    }
    let frames = v.metadata.frame_count;
    for (i, s) in input.segments.iter().enumerate() {
        let p = format!("/segments/{i}");
        if !label_ids.contains_key(&s.label) {
            checks.add(&format!("{p}/label"), format!("`{}` is not one of the prediction's labels", s.label));
        }
        super::segments::check_frames(&mut checks, &p, s.start_frame, s.end_frame, frames);
    }
    checks.finish()?;
    let source = terms::id_of(db, "information_source", "prediction").await?;
    let now = super::now();
    let mut tx = db.begin().await?;
    tx.execute(
        "INSERT INTO video_prediction (video_id, ai_model_version_id, storage_key, frame_count, step, labels, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (video_id, ai_model_version_id) DO UPDATE SET storage_key = excluded.storage_key, frame_count = excluded.frame_count, \
         step = excluded.step, labels = excluded.labels, created_at = excluded.created_at",
        vec![
            Param::from(video),
            Param::from(model_version),
            Param::from(&input.storage_key),
            Param::from(input.frame_count),
            Param::from(input.step),
            Param::Json(Some(Value::from(input.labels.clone()))),
            Param::from(now),
        ],
    )
    .await?;
    tx.execute("DELETE FROM label_video_segment WHERE video_id = $1 AND ai_model_version_id = $2", params![video, model_version]).await?;
    for chunk in input.segments.chunks(100) {
        let mut values = Vec::new();
        let mut params = Vec::new();
        for (i, s) in chunk.iter().enumerate() {
            let b = i * 6;
            values.push(format!("(${}, ${}, ${}, ${}, ${}, ${}, 1, $0, $0)", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6));
            params.extend(params![video, label_ids[&s.label], s.start_frame, s.end_frame, source, model_version]);
        }
        let n = params.len() + 1;
        params.push(Param::from(now));
        let sql = format!(
            "INSERT INTO label_video_segment (video_id, label_id, start_frame, end_frame, information_source_id, ai_model_version_id, version, created_at, updated_at) VALUES {}",
            values.join(", ").replace("$0", &format!("${n}"))
        );
        tx.execute(&sql, params).await?;
    }
    tx.commit().await?;
    let row: PredictionRow = db
        .fetch_one(&format!("{PREDICTION_SELECT} WHERE p.video_id = $1 AND p.ai_model_version_id = $2"), params![video, model_version])
        .await?;
    Ok(row.into())
}

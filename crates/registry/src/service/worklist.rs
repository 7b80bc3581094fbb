//! The worklist: videos and reports together, newest first, filtered by kind, center, state and the day
//! they arrived, one page at a time (the web app's start page; it must stay quick with tens of thousands
//! of media), with the number in each state and each item's latest processing job.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use endoreg_common::api::Paging;

use crate::db::Db;
use crate::db::exec::Param;

use super::state::{ReportState, VideoState};
use super::{Checks, Filters, Result};

/// What the worklist shows.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorklistQuery {
    /// `video` or `report`; both when absent.
    #[param(pattern = "^(video|report)$")]
    pub kind: Option<String>,
    /// A `center` name.
    pub center: Option<String>,
    /// A processing state (of videos or reports).
    pub state: Option<String>,
    /// Received on or after this day (UTC).
    pub received_from: Option<NaiveDate>,
    /// Received on or before this day (UTC).
    pub received_to: Option<NaiveDate>,
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_u64)]
    pub page: Option<u32>,
    /// Items per page, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<u32>,
}

/// A video or report in the worklist.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct WorklistItem {
    /// `video` or `report`.
    pub kind: String,
    pub id: i64,
    pub center: String,
    /// The endoscopy processor (videos).
    pub processor: Option<String>,
    pub state: String,
    pub state_detail: Option<String>,
    /// When the state or (reports) the record last changed.
    pub changed_at: DateTime<Utc>,
    /// When it was uploaded or registered.
    pub received_at: DateTime<Utc>,
    pub patient_examination_id: Option<i64>,
    /// Seconds (videos, once probed).
    pub duration_s: Option<f64>,
    /// The anonymised video's key (videos, once anonymised): pins media URLs to this version.
    pub anonymised_key: Option<String>,
    /// The latest processing job.
    #[sqlx(skip)]
    pub job: Option<WorklistJob>,
}

/// The state of an item's latest job: whether a worker is at it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorklistJob {
    pub id: i64,
    pub kind: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// How many items of the filter are in one state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StateCount {
    pub kind: String,
    pub state: String,
    pub count: i64,
}

/// One page of the worklist.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Worklist {
    pub items: Vec<WorklistItem>,
    /// Items matching the filters, over all pages.
    pub total: i64,
    #[schema(value_type = i64, minimum = 1, maximum = 4294967295_u64)]
    pub page: u32,
    #[schema(minimum = 1, maximum = 500)]
    pub per_page: u32,
    /// For each kind and state, how many items match the other filters (all but `state`).
    pub states: Vec<StateCount>,
}

const VIDEOS: &str = "SELECT 'video' AS kind, m.id AS id, c.name AS center, p.name AS processor, m.state, m.state_detail, m.state_changed_at AS changed_at, \
     m.created_at AS received_at, m.patient_examination_id, m.duration_s, m.anonymised_key \
     FROM video m JOIN center c ON c.id = m.center_id LEFT JOIN endoscopy_processor p ON p.id = m.endoscopy_processor_id";
const REPORTS: &str = "SELECT 'report' AS kind, m.id AS id, c.name AS center, NULL AS processor, m.state, m.state_detail, m.updated_at AS changed_at, \
     m.created_at AS received_at, m.patient_examination_id, NULL AS duration_s, NULL AS anonymised_key \
     FROM report_document m JOIN center c ON c.id = m.center_id";

/// The worklist page `query` asks for.
pub async fn list(db: &Db, query: &WorklistQuery) -> Result<Worklist> {
    let paging = Paging { page: query.page.unwrap_or(1), per_page: query.per_page.unwrap_or(50) };
    let mut checks = Checks::default();
    let (videos, reports) = match query.kind.as_deref() {
        None => (true, true),
        Some("video") => (true, false),
        Some("report") => (false, true),
        Some(other) => {
            checks.add("/kind", format!("unknown kind `{other}`; kinds are video and report"));
            (false, false)
        }
    };
    if let Some(s) = &query.state {
        let video_state = s.parse::<VideoState>().is_ok();
        let report_state = s.parse::<ReportState>().is_ok();
        if !(videos && video_state || reports && report_state) {
            let mut known: Vec<&str> = Vec::new();
            if videos {
                known.extend(VideoState::ALL.map(VideoState::as_str));
            }
            if reports {
                known.extend(ReportState::ALL.map(ReportState::as_str).into_iter().filter(|s| !known.contains(s)).collect::<Vec<_>>());
            }
            checks.add("/state", format!("unknown state `{s}`; states are {}", known.join(", ")));
        }
    }
    if let (Some(from), Some(to)) = (query.received_from, query.received_to)
        && from > to
    {
        checks.add("/received_to", format!("must not be before received_from ({from})"));
    }
    let (limit, offset) = match super::limits(&paging) {
        Ok(l) => l,
        Err(super::ServiceError::Invalid(problems)) => {
            for p in problems {
                checks.add(&p.pointer, p.detail);
            }
            (0, 0)
        }
        Err(e) => return Err(e),
    };
    checks.finish()?;

    // The filters but the state: the counts per state use them; the page adds the state.
    let mut f = Filters::default();
    if let Some(c) = &query.center {
        f.add("c.name = ?", c);
    }
    if let Some(from) = query.received_from {
        f.add("m.created_at >= ?", day_start(from));
    }
    if let Some(to) = query.received_to
        && let Some(next) = to.succ_opt()
    {
        f.add("m.created_at < ?", day_start(next));
    }
    let mut states = Vec::new();
    for (kind, included, table) in [("video", videos, "video m"), ("report", reports, "report_document m")] {
        if !included {
            continue;
        }
        let sql = format!(
            "SELECT m.state, COUNT(*) FROM {table} JOIN center c ON c.id = m.center_id{} GROUP BY m.state ORDER BY m.state",
            f.sql()
        );
        let rows: Vec<(String, i64)> = db.fetch_all(&sql, f.params()).await?;
        states.extend(rows.into_iter().map(|(state, count)| StateCount { kind: kind.to_owned(), state, count }));
    }
    let total = states.iter().filter(|s| query.state.as_ref().is_none_or(|q| *q == s.state)).map(|s| s.count).sum();

    let mut f = f;
    if let Some(s) = &query.state {
        f.add("m.state = ?", s);
    }
    let branches: Vec<String> = [(videos, VIDEOS), (reports, REPORTS)]
        .into_iter()
        .filter(|(included, _)| *included)
        .map(|(_, select)| format!("{select}{}", f.sql()))
        .collect();
    let n = f.params().len();
    let mut params = f.params();
    params.push(Param::Int(Some(limit)));
    params.push(Param::Int(Some(offset)));
    let sql = format!("{} ORDER BY received_at DESC, kind DESC, id DESC LIMIT ${} OFFSET ${}", branches.join(" UNION ALL "), n + 1, n + 2);
    let mut items: Vec<WorklistItem> = db.fetch_all(&sql, params).await?;
    attach_jobs(db, &mut items).await?;
    Ok(Worklist { items, total, page: paging.page, per_page: paging.per_page, states })
}

fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    kind: String,
    video_id: Option<i64>,
    report_id: Option<i64>,
    state: String,
    attempts: i64,
    max_attempts: i64,
    last_error: Option<String>,
}

/// Each item's latest job, in one query for the page.
async fn attach_jobs(db: &Db, items: &mut [WorklistItem]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut params = Vec::new();
    let mut list = |kind: &str| {
        let ids: Vec<String> = items
            .iter()
            .filter(|i| i.kind == kind)
            .map(|i| {
                params.push(Param::from(i.id));
                format!("${}", params.len())
            })
            .collect();
        if ids.is_empty() { "NULL".to_owned() } else { ids.join(", ") }
    };
    let (videos, reports) = (list("video"), list("report"));
    let rows: Vec<JobRow> = db
        .fetch_all(
            &format!(
                "SELECT id, kind, video_id, report_id, state, attempts, max_attempts, last_error FROM job \
                 WHERE video_id IN ({videos}) OR report_id IN ({reports}) ORDER BY id"
            ),
            params,
        )
        .await?;
    for row in rows {
        let (kind, id) = match (row.video_id, row.report_id) {
            (Some(v), _) => ("video", v),
            (None, Some(r)) => ("report", r),
            (None, None) => continue,
        };
        if let Some(item) = items.iter_mut().find(|i| i.kind == kind && i.id == id) {
            // Ordered by id: the last one seen is the latest.
            item.job = Some(WorklistJob {
                id: row.id,
                kind: row.kind,
                state: row.state,
                attempts: row.attempts,
                max_attempts: row.max_attempts,
                last_error: row.last_error,
            });
        }
    }
    Ok(())
}

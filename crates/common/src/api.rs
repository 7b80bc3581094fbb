//! The JSON types of the registry API (`/api/v1`), shared by the server, the CLI and the workers.
//!
//! Conventions:
//! - Terminology is referred to by `name` (`"examination": "colonoscopy"`), never by internal id.
//! - Clinical and media records have numeric ids and a `version` that every change increments; updates
//!   and deletes must send it back as `If-Match: "<version>"` (optimistic concurrency).
//! - Input types reject unknown fields, so a typo is an error rather than a silently ignored field.
//! - In `...Patch` types an absent field is left alone and `null` clears a nullable field.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// `Some(None)` for an explicit `null`, `None` for an absent field (with `#[serde(default)]`).
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Items matching the filters, over all pages.
    pub total: i64,
    #[schema(value_type = i64, minimum = 1, maximum = 4294967295_u64)]
    pub page: u32,
    #[schema(minimum = 1, maximum = 500)]
    pub per_page: u32,
}

/// Paging parameters of every list endpoint.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// 1-based page number (default 1).
    #[serde(default = "one")]
    #[param(value_type = i64, minimum = 1, maximum = 4294967295_u64)]
    #[schema(value_type = i64, minimum = 1, maximum = 4294967295_u64)]
    pub page: u32,
    /// Items per page, 1..=500 (default 50).
    #[serde(default = "fifty")]
    #[param(minimum = 1, maximum = 500)]
    #[schema(minimum = 1, maximum = 500)]
    pub per_page: u32,
}

fn one() -> u32 {
    1
}
fn fifty() -> u32 {
    50
}

impl Paging {
    pub fn new(page: Option<u32>, per_page: Option<u32>) -> Self {
        Paging { page: page.unwrap_or(1), per_page: per_page.unwrap_or(50) }
    }
}

/// Filters that carry paging parameters in the same query string.
pub trait Paged {
    fn paging(&self) -> Paging;
}

macro_rules! paged {
    ($($t:ty),*) => {$(
        impl Paged for $t {
            fn paging(&self) -> Paging {
                Paging::new(self.page, self.per_page)
            }
        }
    )*};
}
paged!(TermFilter, PatientFilter, ExaminationFilter, VideoFilter, ReportFilter);

impl Default for Paging {
    fn default() -> Self {
        Self { page: 1, per_page: 50 }
    }
}

// ---------------------------------------------------------------------------------------------------
// Terminology

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TermKindSummary {
    pub kind: String,
    pub count: i64,
}

/// A terminology entry with its references resolved to names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TermEntry {
    pub kind: String,
    pub name: String,
    pub name_de: Option<String>,
    pub name_en: Option<String>,
    pub description: Option<String>,
    pub description_de: Option<String>,
    pub description_en: Option<String>,
    /// Typed fields of the kind (e.g. `abbreviation`, `image_width`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// Single references: field → name of the referenced entry.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub refs: Map<String, Value>,
    /// List references: field → names, in their stored order.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub links: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<Region>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Region {
    pub name: String,
    /// `endoscope_image`, `patient_information` or `device_information`.
    pub kind: String,
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TermFilter {
    /// Substring of the name or a translation (case-insensitive).
    pub q: Option<String>,
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_u64)]
    pub page: Option<u32>,
    /// Items per page, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<u32>,
}

/// A finding classification with its choices, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClassificationWithChoices {
    pub name: String,
    pub name_en: Option<String>,
    pub name_de: Option<String>,
    pub classification_types: Vec<String>,
    pub findings: Vec<String>,
    pub choices: Vec<ChoiceSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChoiceSummary {
    pub name: String,
    pub name_en: Option<String>,
    pub name_de: Option<String>,
}

// ---------------------------------------------------------------------------------------------------
// Patients

/// A pseudonymised patient: nothing here identifies a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Patient {
    pub id: i64,
    pub pseudonym: String,
    pub center: String,
    pub gender: Option<String>,
    pub birth_year: Option<i32>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientCreate {
    pub center: String,
    pub gender: Option<String>,
    /// From 1900 to the current year.
    #[schema(minimum = 1900)]
    pub birth_year: Option<i32>,
    /// A pseudonym chosen by the caller (e.g. from the clinic's pseudonymisation service); generated when
    /// absent (`P-` and 10 characters). A chosen one is 3 to 64 letters A-Z (any case), digits and single
    /// hyphens between them, with at least one digit, so that a name is never taken for one. It is stored
    /// trimmed and in upper case: `dup-1 ` and `DUP-1` are the same pseudonym.
    #[schema(min_length = 3, max_length = 64, pattern = "^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")]
    pub pseudonym: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientPatch {
    pub center: Option<String>,
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub gender: Option<Option<String>>,
    /// From 1900 to the current year; must agree with the identity's date of birth.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>, minimum = 1900)]
    pub birth_year: Option<Option<i32>>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PatientFilter {
    /// Center name.
    pub center: Option<String>,
    /// Compared trimmed and case-folded, like pseudonyms are stored.
    pub pseudonym: Option<String>,
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_u64)]
    pub page: Option<u32>,
    /// Items per page, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<u32>,
}

/// Patient-identifying data. Readable and writable only by roles with the identity permissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PatientIdentity {
    pub patient_id: i64,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub external_id: Option<String>,
    pub notes: Option<String>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientIdentityIn {
    /// One line, not blank, at most 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub first_name: Option<String>,
    /// One line, not blank, at most 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub last_name: Option<String>,
    /// From 1900-01-01 to today; its year must be the patient's birth year, and no examination or
    /// intervention of the patient may lie before it.
    pub date_of_birth: Option<NaiveDate>,
    /// The hospital's patient number: one line, not blank, at most 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub external_id: Option<String>,
    /// Free text (line breaks and tabs allowed), at most 10,000 characters.
    #[schema(max_length = 10000)]
    pub notes: Option<String>,
}

// ---------------------------------------------------------------------------------------------------
// Patient examinations and findings

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExaminationSummary {
    pub id: i64,
    pub patient_id: i64,
    pub examination: String,
    pub center: String,
    pub date: Option<NaiveDate>,
    pub version: i64,
}

/// A patient examination with its indications and findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PatientExamination {
    pub id: i64,
    pub patient_id: i64,
    pub examination: String,
    pub center: String,
    pub examiner_id: Option<i64>,
    pub date: Option<NaiveDate>,
    pub indications: Vec<Indication>,
    pub findings: Vec<PatientFinding>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Indication {
    /// An `examination_indication` name.
    pub indication: String,
    /// An `examination_indication_classification_choice` name.
    #[serde(default)]
    pub choice: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientExaminationCreate {
    #[schema(minimum = 1)]
    pub patient_id: i64,
    /// An `examination` name, e.g. `colonoscopy`.
    pub examination: String,
    /// Where it took place; the patient's center when absent.
    pub center: Option<String>,
    /// From 1900-01-01 to today, not before the patient's birth.
    pub date: Option<NaiveDate>,
    #[serde(default)]
    pub indications: Vec<Indication>,
    /// Findings recorded together with the examination.
    #[serde(default)]
    pub findings: Vec<PatientFindingIn>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientExaminationPatch {
    pub examination: Option<String>,
    pub center: Option<String>,
    /// From 1900-01-01 to today, not before the patient's birth.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<NaiveDate>)]
    pub date: Option<Option<NaiveDate>>,
    /// Replaces the indications when present.
    pub indications: Option<Vec<Indication>>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExaminationFilter {
    /// Center name.
    pub center: Option<String>,
    /// Examination name (e.g. `colonoscopy`).
    pub examination: Option<String>,
    /// Examination type name (e.g. `endoscopy`): examinations of that type.
    pub examination_type: Option<String>,
    pub patient_id: Option<i64>,
    /// Earliest date, inclusive.
    pub date_from: Option<NaiveDate>,
    /// Latest date, inclusive.
    pub date_to: Option<NaiveDate>,
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_u64)]
    pub page: Option<u32>,
    /// Items per page, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PatientFinding {
    pub id: i64,
    pub patient_examination_id: i64,
    pub finding: String,
    pub classifications: Vec<ClassificationChoice>,
    pub interventions: Vec<Intervention>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassificationChoice {
    /// A `finding_classification` name, e.g. `paris`.
    pub classification: String,
    /// One of that classification's choices, e.g. `paris_0_is`.
    pub choice: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Intervention {
    /// A `finding_intervention` name, e.g. `cold_snare_polypectomy`.
    pub intervention: String,
    /// `planned`, `performed`, `not_performed` or `failed`.
    #[serde(default)]
    #[schema(pattern = "^(planned|performed|not_performed|failed)$")]
    pub state: Option<String>,
    /// From 1900-01-01 to today (a `planned` one up to 10 years ahead), not before the patient's birth.
    #[serde(default)]
    pub date: Option<NaiveDate>,
}

/// A finding as written: replaces the finding's classifications and interventions entirely.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientFindingIn {
    /// A `finding` name, e.g. `colon_polyp`.
    pub finding: String,
    #[serde(default)]
    pub classifications: Vec<ClassificationChoice>,
    #[serde(default)]
    pub interventions: Vec<Intervention>,
}

// ---------------------------------------------------------------------------------------------------
// Videos, frames, label segments

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Video {
    pub id: i64,
    pub center: String,
    pub processor: Option<String>,
    pub patient_examination_id: Option<i64>,
    pub sha256: String,
    pub size_bytes: Option<i64>,
    /// The processing state: `uploaded` → `probed` → `anonymised` → `frames_extracted` → `predicted` →
    /// `validated`, or `failed` (with `state_detail` saying why).
    pub state: String,
    pub state_detail: Option<String>,
    pub state_changed_at: DateTime<Utc>,
    pub metadata: VideoMetadata,
    pub raw_key: Option<String>,
    pub anonymised_key: Option<String>,
    pub frame_sets: Vec<FrameSet>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What probing the file found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoMetadata {
    #[schema(max_length = 64)]
    pub container: Option<String>,
    #[schema(max_length = 64)]
    pub codec: Option<String>,
    #[schema(minimum = 1, maximum = 16384)]
    pub width: Option<i64>,
    #[schema(minimum = 1, maximum = 16384)]
    pub height: Option<i64>,
    #[schema(exclusive_minimum = 0, maximum = 1000)]
    pub fps: Option<f64>,
    #[schema(minimum = 0)]
    pub duration_s: Option<f64>,
    #[schema(minimum = 0, maximum = 1000000000)]
    pub frame_count: Option<i64>,
    /// Degrees, one of 0, 90, 180, 270.
    #[schema(minimum = 0, maximum = 270, multiple_of = 90)]
    pub rotation: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoCreate {
    pub center: String,
    /// An `endoscopy_processor` name: decides which regions anonymisation blanks.
    pub processor: Option<String>,
    #[schema(minimum = 1)]
    pub patient_examination_id: Option<i64>,
    /// SHA-256 of the raw file, lowercase hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    #[schema(minimum = 0)]
    pub size_bytes: Option<i64>,
    /// The stored raw file: `raw/<first two of sha256>/<sha256>.age`, this content's key.
    #[schema(pattern = "^raw/[0-9a-f]{2}/[0-9a-f]{64}\\.age$")]
    pub raw_key: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoPatch {
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub processor: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub patient_examination_id: Option<Option<i64>>,
    /// Replaces the metadata when present.
    pub metadata: Option<VideoMetadata>,
    /// `raw/<first two of sha256>/<sha256>.age`, the video's content key.
    #[schema(pattern = "^raw/[0-9a-f]{2}/[0-9a-f]{64}\\.age$")]
    pub raw_key: Option<String>,
    /// `anonymised/<first two of its sha256>/<sha256 of the anonymised video>.mp4`.
    #[schema(pattern = "^anonymised/[0-9a-f]{2}/[0-9a-f]{64}\\.mp4$")]
    pub anonymised_key: Option<String>,
}

/// A request to move a video (or report) to another processing state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    pub state: String,
    /// Why (required when the new state is `failed`): free text, at most 2,000 characters.
    #[schema(max_length = 2000)]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StateEvent {
    pub from_state: Option<String>,
    pub to_state: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VideoFilter {
    pub center: Option<String>,
    pub state: Option<String>,
    pub patient_examination_id: Option<i64>,
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_u64)]
    pub page: Option<u32>,
    /// Items per page, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<u32>,
}

/// A video has at most this many frames (10⁹: 193 days at 60 frames per second); frame numbers run from
/// 0 to `MAX_FRAMES - 1`. Every frame number, count and step the API takes is bounded by it, so that the
/// arithmetic on them cannot overflow.
pub const MAX_FRAMES: i64 = 1_000_000_000;

/// Extracted frames of one source: frames `first_frame + i * step` for `i < frame_count`, stored as
/// `<storage_prefix>/<frame number, 6 digits>.<format>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameSet {
    /// `raw` or `anonymised`.
    #[schema(pattern = "^(raw|anonymised)$")]
    pub source: String,
    #[schema(minimum = 0, maximum = 999999999)]
    pub first_frame: i64,
    /// The last frame, `first_frame + (frame_count - 1) * step`, lies within the video (and below 10⁹).
    #[schema(minimum = 0, maximum = 1000000000)]
    pub frame_count: i64,
    #[schema(minimum = 1, maximum = 1000000000)]
    pub step: i64,
    /// `jpeg` or `png`.
    #[schema(pattern = "^(jpeg|png)$")]
    pub format: String,
    /// `frames/<the video's sha256>/<source>`.
    #[schema(pattern = "^frames/[0-9a-f]{64}/(raw|anonymised)$")]
    pub storage_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LabelSegment {
    pub id: i64,
    pub video_id: i64,
    pub label: String,
    pub start_frame: i64,
    /// Inclusive.
    pub end_frame: i64,
    /// An `information_source` name (`prediction`, `annotation`, ...).
    pub source: Option<String>,
    pub model_version_id: Option<i64>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelSegmentIn {
    /// A `label` name, e.g. `polyp`.
    pub label: String,
    #[schema(minimum = 0, maximum = 999999999)]
    pub start_frame: i64,
    /// Inclusive; at least `start_frame`, and within the video.
    #[schema(minimum = 0, maximum = 999999999)]
    pub end_frame: i64,
    pub source: Option<String>,
    #[schema(minimum = 1)]
    pub model_version_id: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SegmentFilter {
    /// A `label` name.
    pub label: Option<String>,
    /// An `information_source` name.
    pub source: Option<String>,
}

// ---------------------------------------------------------------------------------------------------
// Reports

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub id: i64,
    pub center: String,
    pub patient_examination_id: Option<i64>,
    pub pdf_type: Option<String>,
    pub sha256: String,
    pub size_bytes: Option<i64>,
    /// `uploaded` → `text_extracted` → `anonymised`, or `failed`.
    pub state: String,
    pub state_detail: Option<String>,
    pub raw_key: Option<String>,
    /// The report text with identifying values replaced by placeholders.
    pub anonymised_text: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportCreate {
    pub center: String,
    #[schema(minimum = 1)]
    pub patient_examination_id: Option<i64>,
    pub pdf_type: Option<String>,
    /// SHA-256 of the PDF, lowercase hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    #[schema(minimum = 0)]
    pub size_bytes: Option<i64>,
    /// `raw/<first two of sha256>/<sha256>.age`, this content's key.
    #[schema(pattern = "^raw/[0-9a-f]{2}/[0-9a-f]{64}\\.age$")]
    pub raw_key: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportPatch {
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub patient_examination_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub pdf_type: Option<Option<String>>,
    /// `raw/<first two of sha256>/<sha256>.age`, the report's content key.
    #[schema(pattern = "^raw/[0-9a-f]{2}/[0-9a-f]{64}\\.age$")]
    pub raw_key: Option<String>,
    /// Free text, at most 500,000 characters.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, max_length = 500000)]
    pub anonymised_text: Option<Option<String>>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportFilter {
    pub center: Option<String>,
    pub state: Option<String>,
    pub patient_examination_id: Option<i64>,
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_u64)]
    pub page: Option<u32>,
    /// Items per page, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<u32>,
}

// ---------------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Token {
    pub id: i64,
    pub name: String,
    pub role: crate::access::Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    pub name: String,
    pub role: crate::access::Role,
    /// Days until the token expires (1 to 3650, ten years); never when absent.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// The longest a token may be made to last, in days ([`TokenCreate::expires_in_days`]; the OpenAPI
/// `maximum` above says the same, and a test holds the two together).
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// A new token. `token` is shown this once; only its hash is stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    pub token: String,
    #[serde(flatten)]
    pub info: Token,
}

/// `/readyz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub database: String,
    pub migrations_applied: usize,
    pub migrations_known: usize,
}

// ---------------------------------------------------------------------------------------------------
// Uploads and jobs

/// Identifying data that comes with a video or report (from the uploader, or found in a report). Only
/// roles with the identity permission, and the worker processing the medium, can read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaIdentity {
    pub patient_first_name: Option<String>,
    pub patient_last_name: Option<String>,
    pub patient_date_of_birth: Option<NaiveDate>,
    pub examination_date: Option<NaiveDate>,
    pub examiner: Option<String>,
}

impl MediaIdentity {
    pub fn is_empty(&self) -> bool {
        *self == MediaIdentity::default()
    }
}

/// The `metadata` part of an upload (multipart/form-data: `metadata` first, then `file`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadMetadata {
    pub center: String,
    /// The endoscopy processor that recorded a video (required for videos: it decides what is blanked).
    pub processor: Option<String>,
    pub patient_examination_id: Option<i64>,
    /// For reports: a `pdf_type` name.
    pub pdf_type: Option<String>,
    pub identity: Option<MediaIdentity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UploadResult {
    /// `video` or `report`, as sniffed from the content.
    pub kind: String,
    pub video: Option<Video>,
    pub report: Option<Report>,
    pub job: Job,
    /// The same content was uploaded before; nothing new was stored.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: i64,
    /// `process_video`, `process_report` or `predict_video`.
    pub kind: String,
    pub video_id: Option<i64>,
    pub report_id: Option<i64>,
    /// For `predict_video`: the model version to run (none: the one the inference worker serves).
    pub ai_model_version_id: Option<i64>,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: DateTime<Utc>,
    /// The worker holding the lease (the name it claimed with). Shown only to roles that process jobs
    /// (admin, service); absent for the others.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobClaim {
    /// The worker's name (host and process), recorded as the lease owner.
    pub worker: String,
    /// Job kinds the worker handles.
    pub kinds: Vec<String>,
    /// How long the lease lasts unless renewed by a heartbeat.
    pub lease_secs: i64,
}

/// Who asks for a leased job's identity: the worker name the job was claimed with (the token must be the
/// one it was claimed with, too).
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobWorker {
    /// The worker name sent with the claim.
    pub worker: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobHeartbeat {
    pub worker: String,
    pub lease_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobCompletion {
    pub worker: String,
    /// `succeeded`, `failed`, or `released`: given back unfinished because the worker is stopping; the
    /// job is queued again at once and the attempt does not count.
    pub outcome: String,
    /// Why it failed, in words a data manager can act on (for `failed`; not recorded otherwise).
    pub error: Option<String>,
    /// Whether another attempt may succeed (a transient fault) or not (bad input).
    #[serde(default)]
    pub retry: bool,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub video_id: Option<i64>,
    pub report_id: Option<i64>,
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_u64)]
    pub page: Option<u32>,
    /// Items per page, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<u32>,
}
paged!(JobFilter);

// ---------------------------------------------------------------------------------------------------
// AI models and predictions

/// A trained model's version as the registry knows it: predictions and segments name it as their source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AiModelVersion {
    pub id: i64,
    /// An `ai_model` name.
    pub model: String,
    pub version: String,
    /// The `label_set` its outputs are, in order.
    pub label_set: Option<String>,
    /// The model's sidecar metadata (preprocessing, thresholds, ...).
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
}

/// Registers a model version (idempotent: the same model and version give the same record).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiModelVersionIn {
    pub model: String,
    /// One line, at most 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub version: String,
    pub label_set: Option<String>,
    #[serde(default)]
    pub metadata: Value,
}

/// A labelled range from a model's predictions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictedSegment {
    pub label: String,
    #[schema(minimum = 0, maximum = 999999999)]
    pub start_frame: i64,
    /// Inclusive.
    #[schema(minimum = 0, maximum = 999999999)]
    pub end_frame: i64,
}

/// A video's predictions by one model version: where the per-frame probabilities are stored, and the
/// segments derived from them. Replaces that model version's earlier predictions and segments.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictionIn {
    /// Object key of the probabilities (frames × labels): `predictions/<first two of the video's sha256>/<the
    /// video's sha256>/<model version id>.eprb`.
    #[schema(pattern = "^predictions/[0-9a-f]{2}/[0-9a-f]{64}/[0-9]+\\.eprb$")]
    pub storage_key: String,
    /// Frames predicted (every `step`-th frame of the video).
    #[schema(minimum = 0, maximum = 1000000000)]
    pub frame_count: i64,
    #[schema(minimum = 1, maximum = 1000000000)]
    pub step: i64,
    /// Label names in the order of the stored probabilities.
    pub labels: Vec<String>,
    pub segments: Vec<PredictedSegment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Prediction {
    pub video_id: i64,
    pub model_version_id: i64,
    pub storage_key: String,
    pub frame_count: i64,
    pub step: i64,
    pub labels: Vec<String>,
    pub segments: i64,
    pub created_at: DateTime<Utc>,
}

/// Asks for a video's prediction (queues a job).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// A registered model version; none: the model the inference worker serves.
    #[schema(minimum = 1)]
    pub model_version_id: Option<i64>,
}

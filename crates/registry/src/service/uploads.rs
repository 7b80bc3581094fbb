//! Registering uploads: what the content is (sniffed from its first bytes, not from a file name), and the
//! video or report, identity and job it becomes, in one transaction. The streaming itself (hashing,
//! encryption, size limit, atomic storage) is `endoreg_common::storage`.

use endoreg_common::api::{ReportCreate, UploadMetadata, UploadResult, VideoCreate};
use endoreg_common::storage::Ingested;

use crate::db::Db;
use crate::db::exec::One;
use crate::params;

use super::jobs::{self, Subject};
use super::{Checks, Result, ServiceError, reports, terms, videos};

/// What an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// A video container: MP4/MOV, Matroska/WebM, AVI or MPEG-TS.
    Video(&'static str),
    Pdf,
}

/// Bytes needed to recognise every supported format.
pub const SNIFF_BYTES: usize = 512;

/// Recognises the content from its first bytes.
pub fn sniff(head: &[u8]) -> std::result::Result<MediaKind, String> {
    if head.is_empty() {
        return Err("the file is empty".into());
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Ok(MediaKind::Video("mp4"));
    }
    if head.len() >= 4 && head[..4] == [0x1A, 0x45, 0xDF, 0xA3] {
        return Ok(MediaKind::Video("matroska"));
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"AVI " {
        return Ok(MediaKind::Video("avi"));
    }
    if head.len() >= 377 && head[0] == 0x47 && head[188] == 0x47 && head[376] == 0x47 {
        return Ok(MediaKind::Video("mpegts"));
    }
    if head.starts_with(b"%PDF-") {
        return Ok(MediaKind::Pdf);
    }
    let shown: String = head.iter().take(8).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
    Err(format!(
        "the content is not a supported video (MP4/MOV, MKV/WebM, AVI, MPEG-TS) or PDF report (it starts with {shown}); \
         the file name does not matter, the content does"
    ))
}

/// Checks the metadata before any byte of the file is stored.
pub async fn check_metadata(db: &Db, meta: &UploadMetadata) -> Result<()> {
    let mut checks = Checks::default();
    terms::require(db, &mut checks, "center", &meta.center, "/center").await?;
    if let Some(p) = &meta.processor {
        terms::require(db, &mut checks, "endoscopy_processor", p, "/processor").await?;
    }
    if let Some(t) = &meta.pdf_type {
        terms::require(db, &mut checks, "pdf_type", t, "/pdf_type").await?;
    }
    super::examinations::check_reference(db, &mut checks, meta.patient_examination_id).await?;
    if let Some(i) = &meta.identity
        && let Some(d) = i.patient_date_of_birth.filter(|d| *d > chrono::Utc::now().date_naive())
    {
        checks.add("/identity/patient_date_of_birth", format!("{d} lies in the future"));
    }
    checks.finish()
}

/// Checks what the content requires of the metadata (a video names its processor).
pub fn check_kind(meta: &UploadMetadata, kind: MediaKind) -> Result<()> {
    if matches!(kind, MediaKind::Video(_)) && meta.processor.is_none() {
        return Err(ServiceError::invalid(
            "/processor",
            "a video upload must name its endoscopy processor: it decides which regions of the picture are blanked",
        ));
    }
    Ok(())
}

/// What [`register`] wrote: the medium, its job, and whether the content was known before.
#[derive(Debug, Clone, Copy)]
pub struct Registered {
    subject: Subject,
    job: i64,
    pub duplicate: bool,
}

/// Creates the video or report for stored content, its identity and its processing job in one transaction,
/// or finds the existing medium when the content was uploaded before (a repeated upload may add identity
/// data the first lacked). An error leaves none of them written.
pub async fn register(db: &Db, meta: &UploadMetadata, kind: MediaKind, stored: &Ingested, max_attempts: i64) -> Result<Registered> {
    let size = i64::try_from(stored.size).unwrap_or(i64::MAX);
    // Checked before the transaction begins: the checks read through the pool (see `videos::check_create`).
    let (subject, duplicate, mut tx) = match kind {
        MediaKind::Video(_) => {
            let create = VideoCreate {
                center: meta.center.clone(),
                processor: meta.processor.clone(),
                patient_examination_id: meta.patient_examination_id,
                sha256: stored.sha256.clone(),
                size_bytes: Some(size),
                raw_key: Some(stored.key.clone()),
            };
            let new = videos::check_create(db, &create).await?;
            let mut tx = db.begin().await?;
            let (id, duplicate) = match videos::create_in(&mut tx, &new).await {
                Ok(id) => (id, false),
                // Uploaded before, or by a concurrent upload of the same content that committed first.
                Err(ServiceError::Conflict(_)) => {
                    let One(id): One<i64> = tx.fetch_one("SELECT id FROM video WHERE sha256 = $1", params![&stored.sha256]).await?;
                    (id, true)
                }
                Err(e) => return Err(e),
            };
            (Subject::Video(id), duplicate, tx)
        }
        MediaKind::Pdf => {
            let create = ReportCreate {
                center: meta.center.clone(),
                patient_examination_id: meta.patient_examination_id,
                pdf_type: meta.pdf_type.clone(),
                sha256: stored.sha256.clone(),
                size_bytes: Some(size),
                raw_key: Some(stored.key.clone()),
            };
            let new = reports::check_create(db, &create).await?;
            let mut tx = db.begin().await?;
            let (id, duplicate) = match reports::create_in(&mut tx, &new).await {
                Ok(id) => (id, false),
                Err(ServiceError::Conflict(_)) => {
                    let One(id): One<i64> =
                        tx.fetch_one("SELECT id FROM report_document WHERE sha256 = $1", params![&stored.sha256]).await?;
                    (id, true)
                }
                Err(e) => return Err(e),
            };
            (Subject::Report(id), duplicate, tx)
        }
    };
    if let Some(i) = meta.identity.as_ref().filter(|i| !i.is_empty()) {
        jobs::store_identity(&mut tx, subject, i, !duplicate).await?;
    }
    let job = jobs::enqueue(&mut tx, subject, max_attempts).await?;
    tx.commit().await?;
    Ok(Registered { subject, job, duplicate })
}

/// The answer to a registered upload. Read after the commit: failing here leaves the upload in place.
pub async fn result(db: &Db, registered: Registered) -> Result<UploadResult> {
    let Registered { subject, job, duplicate } = registered;
    let job = jobs::get(db, job).await?;
    Ok(match subject {
        Subject::Report(id) => {
            UploadResult { kind: "report".into(), video: None, report: Some(reports::get(db, id).await?), job, duplicate }
        }
        Subject::Video(id) | Subject::Prediction(id, _) => {
            UploadResult { kind: "video".into(), video: Some(videos::get(db, id).await?), report: None, job, duplicate }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_recognised_by_their_magic_bytes() {
        let mut mp4 = vec![0, 0, 0, 0x20];
        mp4.extend_from_slice(b"ftypisom\0\0\0\0");
        assert_eq!(sniff(&mp4).unwrap(), MediaKind::Video("mp4"));
        assert_eq!(sniff(&[0x1A, 0x45, 0xDF, 0xA3, 1, 2]).unwrap(), MediaKind::Video("matroska"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0AVI LIST").unwrap(), MediaKind::Video("avi"));
        let mut ts = vec![0u8; 400];
        ts[0] = 0x47;
        ts[188] = 0x47;
        ts[376] = 0x47;
        assert_eq!(sniff(&ts).unwrap(), MediaKind::Video("mpegts"));
        assert_eq!(sniff(b"%PDF-1.7\n").unwrap(), MediaKind::Pdf);
    }

    #[test]
    fn anything_else_is_refused_with_what_it_starts_with() {
        let err = sniff(b"GIF89a....").unwrap_err();
        assert!(err.contains("47 49 46 38"), "{err}");
        assert!(sniff(b"").unwrap_err().contains("empty"));
    }
}

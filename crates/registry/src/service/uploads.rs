//! Registering uploads: what the content is (sniffed from its first bytes, not from a file name), and the
//! video or report, identity and job it becomes, in one transaction. The streaming itself (hashing,
//! encryption, size limit, atomic storage) is `endoreg_common::storage`.

use endoreg_common::api::{MediaIdentity, UploadMetadata, UploadResult, VideoCreate};
use endoreg_common::storage::Ingested;

use crate::db::Db;
use crate::db::exec::One;
use crate::params;

use super::jobs::{self, Subject};
use super::{Checks, Result, ServiceError, terms};

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

/// Creates the video or report for stored content, its identity and its processing job, or returns the
/// existing ones when the content was uploaded before.
pub async fn register(db: &Db, meta: &UploadMetadata, kind: MediaKind, stored: &Ingested, max_attempts: i64) -> Result<UploadResult> {
    let size = i64::try_from(stored.size).unwrap_or(i64::MAX);
    match kind {
        MediaKind::Video(_) => {
            let existing: Option<One<i64>> = db.fetch_optional("SELECT id FROM video WHERE sha256 = $1", params![&stored.sha256]).await?;
            let (id, duplicate) = match existing {
                Some(One(id)) => (id, true),
                None => {
                    let create = VideoCreate {
                        center: meta.center.clone(),
                        processor: meta.processor.clone(),
                        patient_examination_id: meta.patient_examination_id,
                        sha256: stored.sha256.clone(),
                        size_bytes: Some(size),
                        raw_key: Some(stored.key.clone()),
                    };
                    match super::videos::create(db, &create).await {
                        Ok(v) => (v.id, false),
                        // Two uploads of the same content at once: the other one registered it.
                        Err(ServiceError::Conflict(_)) => {
                            let One(id): One<i64> = db.fetch_one("SELECT id FROM video WHERE sha256 = $1", params![&stored.sha256]).await?;
                            (id, true)
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let job = finish(db, Subject::Video(id), meta.identity.as_ref(), duplicate, max_attempts).await?;
            Ok(UploadResult { kind: "video".into(), video: Some(super::videos::get(db, id).await?), report: None, job, duplicate })
        }
        MediaKind::Pdf => {
            let existing: Option<One<i64>> =
                db.fetch_optional("SELECT id FROM report_document WHERE sha256 = $1", params![&stored.sha256]).await?;
            let (id, duplicate) = match existing {
                Some(One(id)) => (id, true),
                None => {
                    let create = endoreg_common::api::ReportCreate {
                        center: meta.center.clone(),
                        patient_examination_id: meta.patient_examination_id,
                        pdf_type: meta.pdf_type.clone(),
                        sha256: stored.sha256.clone(),
                        size_bytes: Some(size),
                        raw_key: Some(stored.key.clone()),
                    };
                    match super::reports::create(db, &create).await {
                        Ok(r) => (r.id, false),
                        Err(ServiceError::Conflict(_)) => {
                            let One(id): One<i64> =
                                db.fetch_one("SELECT id FROM report_document WHERE sha256 = $1", params![&stored.sha256]).await?;
                            (id, true)
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let job = finish(db, Subject::Report(id), meta.identity.as_ref(), duplicate, max_attempts).await?;
            Ok(UploadResult { kind: "report".into(), video: None, report: Some(super::reports::get(db, id).await?), job, duplicate })
        }
    }
}

/// Stores the uploader's identity (a repeated upload may add what the first lacked) and queues the job.
async fn finish(
    db: &Db,
    subject: Subject,
    identity: Option<&MediaIdentity>,
    duplicate: bool,
    max_attempts: i64,
) -> Result<endoreg_common::api::Job> {
    let mut tx = db.begin().await?;
    if let Some(i) = identity.filter(|i| !i.is_empty()) {
        jobs::store_identity(&mut tx, subject, i, !duplicate).await?;
    }
    let job = jobs::enqueue(&mut tx, subject, max_attempts).await?;
    tx.commit().await?;
    jobs::get(db, job).await
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

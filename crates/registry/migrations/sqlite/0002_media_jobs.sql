-- Media processing: the job queue and identifying data that comes with uploads.

-- Work for the media (and later inference) workers. A job belongs to one video or report; workers claim
-- it with a lease, renew the lease while working, and complete it. A failed attempt is retried after a
-- back-off until max_attempts, then the job stays failed with its error.
CREATE TABLE job (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('process_video', 'process_report')),
    video_id INTEGER REFERENCES video(id) ON DELETE CASCADE,
    report_id INTEGER REFERENCES report_document(id) ON DELETE CASCADE,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_after TEXT NOT NULL,
    lease_owner TEXT,
    lease_expires_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    CHECK ((video_id IS NULL) <> (report_id IS NULL))
) STRICT;
CREATE UNIQUE INDEX job_kind_video_idx ON job(kind, video_id) WHERE video_id IS NOT NULL;
CREATE UNIQUE INDEX job_kind_report_idx ON job(kind, report_id) WHERE report_id IS NOT NULL;
CREATE INDEX job_claim_idx ON job(state, run_after);

-- Identifying data that came with a video or report: supplied by the uploader, or found in a report by
-- its template rules. Kept apart like patient_identity, readable with the identity permission only (and
-- by the worker that processes the medium, to find these values in the picture or the text).
CREATE TABLE media_identity (
    id INTEGER PRIMARY KEY,
    video_id INTEGER UNIQUE REFERENCES video(id) ON DELETE CASCADE,
    report_id INTEGER UNIQUE REFERENCES report_document(id) ON DELETE CASCADE,
    patient_first_name TEXT,
    patient_last_name TEXT,
    patient_date_of_birth TEXT,
    examination_date TEXT,
    examiner TEXT,
    source TEXT NOT NULL CHECK (source IN ('uploader', 'extracted')),
    updated_at TEXT NOT NULL,
    CHECK ((video_id IS NULL) <> (report_id IS NULL))
) STRICT;

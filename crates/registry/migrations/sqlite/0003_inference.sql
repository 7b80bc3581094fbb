-- Inference: prediction jobs for a model version, and where a video's per-frame predictions are stored.

-- SQLite cannot change a CHECK constraint in place: the job table is rebuilt with the new job kind and the
-- model version a prediction job is for (0 in model_key: whichever model the worker serves).
CREATE TABLE job_new (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('process_video', 'process_report', 'predict_video')),
    video_id INTEGER REFERENCES video(id) ON DELETE CASCADE,
    report_id INTEGER REFERENCES report_document(id) ON DELETE CASCADE,
    ai_model_version_id INTEGER REFERENCES ai_model_version(id),
    model_key INTEGER NOT NULL DEFAULT 0,
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
    CHECK ((video_id IS NULL) <> (report_id IS NULL)),
    CHECK (model_key = COALESCE(ai_model_version_id, 0))
) STRICT;
INSERT INTO job_new (id, kind, video_id, report_id, ai_model_version_id, model_key, state, attempts, max_attempts, run_after,
                     lease_owner, lease_expires_at, last_error, created_at, updated_at, finished_at)
    SELECT id, kind, video_id, report_id, NULL, 0, state, attempts, max_attempts, run_after,
           lease_owner, lease_expires_at, last_error, created_at, updated_at, finished_at FROM job;
DROP TABLE job;
ALTER TABLE job_new RENAME TO job;
CREATE UNIQUE INDEX job_kind_video_idx ON job(kind, video_id, model_key) WHERE video_id IS NOT NULL;
CREATE UNIQUE INDEX job_kind_report_idx ON job(kind, report_id) WHERE report_id IS NOT NULL;
CREATE INDEX job_claim_idx ON job(state, run_after);

-- A video's per-frame label probabilities from one model version: stored as an object (frames × labels),
-- not as rows.
CREATE TABLE video_prediction (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES video(id) ON DELETE CASCADE,
    ai_model_version_id INTEGER NOT NULL REFERENCES ai_model_version(id),
    storage_key TEXT NOT NULL,
    frame_count INTEGER NOT NULL CHECK (frame_count >= 0),
    step INTEGER NOT NULL CHECK (step >= 1),
    labels TEXT NOT NULL CHECK (json_valid(labels) AND json_type(labels) = 'array'),
    created_at TEXT NOT NULL,
    UNIQUE (video_id, ai_model_version_id)
) STRICT;

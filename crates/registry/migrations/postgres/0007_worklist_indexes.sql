-- The web app's worklist lists videos and reports newest first and looks up the latest job of each on
-- its page: indexes for both, so that a page stays quick with tens of thousands of media.
CREATE INDEX video_created_at_idx ON video(created_at);
CREATE INDEX report_document_created_at_idx ON report_document(created_at);
CREATE INDEX job_video_id_idx ON job(video_id);
CREATE INDEX job_report_id_idx ON job(report_id);

-- A job's lease belongs to the token that claimed it, not only to the worker name it sent: any service
-- token can send any name, so heartbeats, completions and the medium's identity are refused to every
-- other token. No foreign key: the lease is a passing fact, and tokens are revoked, never deleted.
--
-- Jobs running at this upgrade were claimed before the token was recorded; nobody could prove to hold
-- them. They are given back as a stopping worker gives back its job (queued at once, the attempt not
-- counted); their old workers hear that the lease is lost at their next heartbeat.
UPDATE job SET state = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
    lease_owner = NULL, lease_expires_at = NULL
    WHERE state = 'running';
ALTER TABLE job ADD COLUMN lease_token_id BIGINT;

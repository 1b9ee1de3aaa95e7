/* ---- resuming an integration whose account was paused ------------------ */
CREATE OR REPLACE FUNCTION broadcast._rate_resume(account_key text)
RETURNS boolean
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'be_rate_resume';

REVOKE ALL ON FUNCTION broadcast._rate_resume(text) FROM PUBLIC;

/*
 * Suppresses addresses for the workspace (never mailed again by it), and
 * drops their queued rows at once (the trigger on suppressions, under the
 * audience lock).  Only 'manual' and 'unsubscribe' are a tenant's to give:
 * bounces and complaints come from the providers' events.
 */

CREATE OR REPLACE FUNCTION broadcast.suppress(workspace_id text, emails text[], reason text DEFAULT 'manual'::text, detail text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
	bad text;
	n bigint;
BEGIN
	PERFORM broadcast._authorize(suppress.workspace_id);
	IF suppress.reason IS NULL OR suppress.reason NOT IN ('manual', 'unsubscribe') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid suppression reason %s', broadcast._show(suppress.reason)),
			HINT = 'Use "manual" or "unsubscribe"; bounces and complaints come from delivery events.';
	END IF;
	IF emails IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'emails must not be NULL';
	END IF;
	SELECT e INTO bad FROM unnest(emails) e WHERE e IS NULL OR NOT broadcast.is_valid_email(e) LIMIT 1;
	IF FOUND THEN
		PERFORM broadcast._check_email(bad);
	END IF;
	IF length(suppress.detail) > 1000 THEN
		RAISE EXCEPTION USING ERRCODE = 'string_data_right_truncation',
			MESSAGE = 'suppression detail must be at most 1000 characters';
	END IF;
	INSERT INTO broadcast.suppressions (workspace_id, email, reason, detail)
	SELECT DISTINCT suppress.workspace_id, lower(e), suppress.reason, suppress.detail FROM unnest(emails) e
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

COMMENT ON FUNCTION broadcast.suppress(workspace_id text, emails text[], reason text, detail text) IS 'Suppresses addresses for the workspace and drops their queued messages';

/*
 * Ends the pause of an integration's provider account (rate_limits() shows
 * paused_until and paused_reason) once an operator fixed the account: the
 * senders send again at once instead of waiting for the next probe.  The
 * key is the sender's (be_rate_keys in src/ratelimit.c): a shared
 * integration's account bucket is the shared account's, so resuming it
 * resumes every workspace using it.  True when a pause ended.
 */
CREATE OR REPLACE FUNCTION broadcast.resume_integration(workspace_id text, integration_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
BEGIN
	PERFORM broadcast._require_admin('resume an integration');
	PERFORM broadcast._check_id('integration', resume_integration.integration_id);
	SELECT CASE WHEN i.shared_id IS NOT NULL
				THEN 's' || chr(31) || chr(31) || i.shared_id || chr(31) || coalesce(sh.incarnation::text, '')
				ELSE 'w' || chr(31) || i.workspace_id || chr(31) || i.integration_id || chr(31)
					 || coalesce(i.incarnation::text, '') END
	  INTO k
	  FROM broadcast.integrations i
	  LEFT JOIN broadcast.shared_integrations sh ON sh.shared_id = i.shared_id
	 WHERE i.workspace_id = resume_integration.workspace_id
	   AND i.integration_id = resume_integration.integration_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 quote_literal(resume_integration.integration_id),
							 quote_literal(resume_integration.workspace_id));
	END IF;
	RETURN broadcast._rate_resume(k);
END
$$;

REVOKE ALL ON FUNCTION broadcast.resume_integration(text, text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.resume_integration(text, text) TO broadcast_admin;

COMMENT ON FUNCTION broadcast.resume_integration(text, text) IS
	'Ends the pause of an integration''s provider account (a quota used up, sending disabled) once it is fixed';

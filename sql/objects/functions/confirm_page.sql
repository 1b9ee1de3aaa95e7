/*
 * The texts of the edge's confirmation page for a token (the setting
 * double_opt_in.page, '{}' when unset), after checking the token and that
 * its request is still open.  Changes nothing: a GET only shows this.
 */
CREATE OR REPLACE FUNCTION broadcast.confirm_page(token text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
BEGIN
	t := broadcast._confirm_token(token);
	IF NOT EXISTS (SELECT 1 FROM broadcast.consents c
					WHERE c.workspace_id = t.workspace_id AND c.email = t.email AND c.message_id = t.message_id
					  AND (c.confirmed_at IS NOT NULL OR c.requested_at > now() - t.expires)) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'confirmation link expired',
			DETAIL = 'The link is too old, or a newer confirmation was sent since.',
			HINT = 'Subscribe again to get a new link.';
	END IF;
	RETURN t.page;
END
$$;

REVOKE ALL ON FUNCTION broadcast.confirm_page(text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.confirm_page(text) TO broadcast_edge, broadcast_admin;

COMMENT ON FUNCTION broadcast.confirm_page(text) IS
	'The texts of the double opt-in confirmation page for a /c/ token; changes nothing';

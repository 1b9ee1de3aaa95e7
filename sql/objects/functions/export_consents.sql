/* a contact's consent records, for an export or a data subject's request */
CREATE OR REPLACE FUNCTION broadcast.export_consents(workspace_id text, email text)
RETURNS TABLE (list_id text, list_name text, method text, requested_at timestamptz, request_ip inet,
			   confirmed_at timestamptz, confirm_ip inet, member_status text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize(export_consents.workspace_id);
	RETURN QUERY
	SELECT c.list_id, l.name, c.method, c.requested_at, c.request_ip, c.confirmed_at, c.confirm_ip, m.status
	  FROM broadcast.consents c
	  JOIN broadcast.lists l ON l.workspace_id = c.workspace_id AND l.list_id = c.list_id
	  LEFT JOIN broadcast.list_members m
			 ON m.workspace_id = c.workspace_id AND m.list_id = c.list_id AND m.email = c.email
	 WHERE c.workspace_id = export_consents.workspace_id AND c.email = lower(export_consents.email)
	 ORDER BY c.list_id;
END
$$;

REVOKE ALL ON FUNCTION broadcast.export_consents(text, text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.export_consents(text, text) TO broadcast_user, broadcast_admin;

COMMENT ON FUNCTION broadcast.export_consents(text, text) IS
	'A contact''s subscription consents: when and from which address asked for and confirmed, per list';

/* opens and clicks of a broadcast per template: all, and without those flagged as machines' */
CREATE OR REPLACE FUNCTION broadcast.engagement_stats(workspace_id text, broadcast_id text)
RETURNS TABLE (template_id text, sent bigint, opened bigint, human_opened bigint, machine_opened bigint,
			   clicked bigint, human_clicked bigint, machine_clicked bigint)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize(engagement_stats.workspace_id);
	RETURN QUERY
	SELECT h.template_id,
		   count(*) FILTER (WHERE h.status = 'sent'),
		   count(h.opened_at),
		   count(h.opened_at) FILTER (WHERE h.open_machine IS NOT TRUE),
		   count(h.opened_at) FILTER (WHERE h.open_machine),
		   count(h.clicked_at),
		   count(h.clicked_at) FILTER (WHERE h.click_machine IS NOT TRUE),
		   count(h.clicked_at) FILTER (WHERE h.click_machine)
	  FROM broadcast.broadcasts r
	  JOIN broadcast.message_history h
		ON h.workspace_id = r.workspace_id
	   AND h.message_id BETWEEN r.first_message_id AND r.last_message_id
	 WHERE r.workspace_id = engagement_stats.workspace_id AND r.broadcast_id = engagement_stats.broadcast_id
	   AND h.broadcast_id = engagement_stats.broadcast_id
	 GROUP BY GROUPING SETS ((h.template_id), ())
	 ORDER BY h.template_id NULLS FIRST;
END
$$;

REVOKE ALL ON FUNCTION broadcast.engagement_stats(text, text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.engagement_stats(text, text) TO broadcast_user, broadcast_admin;

COMMENT ON FUNCTION broadcast.engagement_stats(text, text) IS
	'Opens and clicks of a broadcast per template: all, human, and flagged as machines''';

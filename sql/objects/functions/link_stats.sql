/* per-link clicks of a broadcast: all and human, hits and distinct messages */
CREATE OR REPLACE FUNCTION broadcast.link_stats(workspace_id text, broadcast_id text)
RETURNS TABLE (link_index integer, url text, clicks bigint, human_clicks bigint,
			   unique_clicks bigint, human_unique_clicks bigint)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize(link_stats.workspace_id);
	RETURN QUERY
	SELECT e.link_index,
		   /* a link personalised per recipient: its most frequent form */
		   mode() WITHIN GROUP (ORDER BY e.url),
		   sum(e.hits)::bigint,
		   coalesce(sum(e.hits) FILTER (WHERE NOT e.machine), 0)::bigint,
		   count(DISTINCT e.message_id),
		   count(DISTINCT e.message_id) FILTER (WHERE NOT e.machine)
	  FROM broadcast.tracked_events e
	 WHERE e.workspace_id = link_stats.workspace_id AND e.broadcast_id = link_stats.broadcast_id
	   AND e.event = 'clicked'
	 GROUP BY e.link_index
	 ORDER BY e.link_index;
END
$$;

REVOKE ALL ON FUNCTION broadcast.link_stats(text, text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION broadcast.link_stats(text, text) TO broadcast_user, broadcast_admin;

COMMENT ON FUNCTION broadcast.link_stats(text, text) IS
	'Clicks per link of a broadcast (first-party tracking): all and human, hits and distinct recipients';

/*
 * For the sender's claim: NULL when a queued message of a broadcast with a
 * window may go now, otherwise when its window opens (in its contact's or
 * the workspace's time zone).
 */
CREATE OR REPLACE FUNCTION broadcast._window_wait(p_workspace_id text, p_broadcast_id text, p_email text)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT broadcast._window_opens(b.send_window,
		   CASE WHEN b.send_window->>'zone' = 'recipient'
				THEN coalesce((SELECT c.timezone FROM broadcast.contacts c
								WHERE c.workspace_id = p_workspace_id AND c.email = p_email), w.timezone)
				ELSE w.timezone END,
		   now())
	  FROM broadcast.broadcasts b
	  JOIN broadcast.workspaces w ON w.workspace_id = b.workspace_id
	 WHERE b.workspace_id = p_workspace_id AND b.broadcast_id = p_broadcast_id
$$;

REVOKE ALL ON FUNCTION broadcast._window_wait(text, text, text) FROM PUBLIC;

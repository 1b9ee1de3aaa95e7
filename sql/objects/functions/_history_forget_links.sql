/*
 * A link may carry personal data (personalised URLs): forget_contact(),
 * which rewrites the history's address, drops the targets of that person's
 * clicks.  Only that function sets message_history.email, so the senders'
 * and the events' updates never fire this.
 */
CREATE OR REPLACE FUNCTION broadcast._history_forget_links()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	UPDATE broadcast.tracked_events e SET url = NULL
	 WHERE e.workspace_id = NEW.workspace_id AND e.message_id = NEW.message_id AND e.url IS NOT NULL;
	RETURN NULL;
END
$$;

/* what a sender does to the HTML of a tracked message (previews, tests) */
CREATE OR REPLACE FUNCTION broadcast._track_rewrite(html text, base_url text, secret bytea, workspace_id text,
										 message_id text, unsubscribe_url text DEFAULT NULL)
RETURNS text
LANGUAGE C IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'be_track_rewrite';

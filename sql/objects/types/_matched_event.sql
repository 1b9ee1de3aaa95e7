CREATE TYPE broadcast._matched_event AS (
	message_id uuid,
	email text,
	list_id text,
	event text,
	occurred_at timestamp with time zone,
	bounce_type text,
	detail text
);

CREATE TYPE broadcast.delivery_event AS (
	message_id uuid,
	provider_message_id text,
	email text,
	event text,
	occurred_at timestamp with time zone,
	bounce_type text,
	detail text
);

/* one row per contact and list: the latest request and its confirmation */
CREATE TABLE broadcast.consents (
	workspace_id	text NOT NULL,
	email			text NOT NULL,
	list_id			text NOT NULL,
	method			text NOT NULL CHECK (method IN ('single', 'double')),
	requested_at	timestamptz NOT NULL DEFAULT now(),
	request_ip		inet,
	message_id		uuid,
	confirmed_at	timestamptz,
	confirm_ip		inet,
	PRIMARY KEY (workspace_id, email, list_id),
	FOREIGN KEY (workspace_id, email) REFERENCES broadcast.contacts ON DELETE CASCADE,
	FOREIGN KEY (workspace_id, list_id) REFERENCES broadcast.lists ON DELETE CASCADE,
	CHECK (method = 'double' OR message_id IS NULL)
);

CREATE INDEX consents_message_idx ON broadcast.consents (workspace_id, message_id)
	WHERE message_id IS NOT NULL;

COMMENT ON TABLE broadcast.consents IS
	'Subscription consent per contact and list: when and from where it was asked for and confirmed';

GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.consents TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.consents', '');

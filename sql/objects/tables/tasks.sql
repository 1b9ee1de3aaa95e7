CREATE TABLE broadcast.tasks (
	workspace_id	text NOT NULL,
	task_id			bigint GENERATED ALWAYS AS IDENTITY,
	broadcast_id	text NOT NULL,
	status			text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'running', 'paused', 'completed', 'failed', 'cancelled')),
	phase			text NOT NULL DEFAULT 'count'
		CHECK (phase IN ('count', 'expand', 'test', 'wait_test', 'wait_winner', 'remainder', 'drain', 'done')),
	run_at			timestamptz NOT NULL DEFAULT now(),
	lease_until		timestamptz,
	lease_token		uuid,
	attempts		integer NOT NULL DEFAULT 0,
	max_attempts	integer NOT NULL DEFAULT 5,
	cursor_email	text,
	ab_cutoff_hash	bigint,
	ab_cutoff_email	text,
	last_error		text,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, task_id),
	FOREIGN KEY (workspace_id, broadcast_id) REFERENCES broadcast.broadcasts ON DELETE CASCADE
);

CREATE INDEX tasks_due_idx ON broadcast.tasks USING btree (run_at) WHERE (status = ANY (ARRAY['pending'::text, 'running'::text]));

CREATE UNIQUE INDEX tasks_one_per_broadcast ON broadcast.tasks USING btree (workspace_id, broadcast_id) WHERE (status = ANY (ARRAY['pending'::text, 'running'::text, 'paused'::text]));

ALTER TABLE broadcast.tasks ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON broadcast.tasks USING ((( SELECT broadcast.is_admin() AS is_admin) OR (workspace_id IN ( SELECT broadcast.my_workspaces() AS my_workspaces))));

GRANT SELECT ON TABLE broadcast.tasks TO broadcast_user;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE broadcast.tasks TO broadcast_admin;

SELECT pg_catalog.pg_extension_config_dump('broadcast.tasks', '');

SELECT pg_catalog.pg_extension_config_dump('broadcast.tasks_task_id_seq', '');

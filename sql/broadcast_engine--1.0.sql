/* broadcast_engine--1.0.sql: the base schema and SQL API */

\echo Use "CREATE EXTENSION broadcast_engine" to load this file. \quit

/*
 * Roles.  Roles are cluster-wide, so they are created only when missing and
 * survive DROP EXTENSION.  broadcast_admin sees and changes every workspace
 * (and integration secrets); broadcast_user is the group every workspace role
 * belongs to; which workspaces a role may touch is recorded in
 * workspace_grants and enforced by row level security.
 */
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broadcast_admin') THEN
		CREATE ROLE broadcast_admin NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'broadcast_user') THEN
		CREATE ROLE broadcast_user NOLOGIN;
	END IF;
END
$roles$;

GRANT USAGE ON SCHEMA broadcast TO broadcast_admin, broadcast_user;

/* ------------------------------------------------------------------------
 * Validation helpers
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast.is_valid_email(email text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
	SELECT length(email) <= 254
	   AND email ~ '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$'
	   AND email !~ '(^\.|\.\.|\.@)'
$$;
COMMENT ON FUNCTION broadcast.is_valid_email(text) IS
	'True when the address is a plain ASCII addr-spec the engine will send to';

/* identifiers users choose: workspace, list, template, integration, broadcast */
CREATE FUNCTION broadcast.is_valid_id(id text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' $$;

/* shows a user value in a message: quoted, with control characters visible */
CREATE FUNCTION broadcast._show(v text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN v IS NULL THEN 'NULL'
				WHEN v ~ '[\x01-\x1f\x7f]' THEN to_jsonb(v)::text
				ELSE quote_literal(v) END
$$;

CREATE FUNCTION broadcast._check_id(kind text, id text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
	IF id IS NULL OR NOT broadcast.is_valid_id(id) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid %s id: %s', kind, coalesce(quote_literal(id), 'NULL')),
			DETAIL = 'Identifiers are 1 to 63 characters: letters, digits, "_", "." and "-", starting with a letter or digit.';
	END IF;
END
$$;

CREATE FUNCTION broadcast._check_email(email text, what text DEFAULT 'email address')
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
	IF email IS NULL OR NOT broadcast.is_valid_email(email) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid %s: %s', what, broadcast._show(email)),
			HINT = 'Use a plain address such as "name@example.com", without a display name.';
	END IF;
END
$$;

/* header-bound text must not be able to start a new header line */
CREATE FUNCTION broadcast._check_header_text(field text, value text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
	IF value ~ '[\x01-\x08\x0a-\x1f\x7f]' THEN
		RAISE EXCEPTION USING
			ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s must not contain line breaks or control characters', field),
			DETAIL = format('The value was %s.', broadcast._show(value)),
			HINT = 'Header fields are single lines; remove CR, LF and other control characters.';
	END IF;
END
$$;

CREATE FUNCTION broadcast._check_timezone(tz text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
	/* pg_timezone_names reads the zone files on every call: skip it for the default */
	IF tz IN ('UTC', 'Etc/UTC') THEN
		RETURN;
	END IF;
	IF tz IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = tz) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('time zone %s is not recognized', coalesce(quote_literal(tz), 'NULL')),
			HINT = 'Use an IANA time zone name listed in pg_timezone_names, such as "Europe/Paris".';
	END IF;
END
$$;

/* wakes the sender workers when the calling transaction commits */
CREATE FUNCTION broadcast._wake_senders()
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'be_sql_wake_senders';

/* wakes the scheduler worker when the calling transaction commits */
CREATE FUNCTION broadcast._wake_scheduler()
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'be_sql_wake_scheduler';

/* ------------------------------------------------------------------------
 * Templates and messages (C: src/tmpl.c, src/mime.c, src/unsub_token.c)
 * ------------------------------------------------------------------------ */

/* raises a syntax error naming the field, line and column */
CREATE FUNCTION broadcast._template_check(source text, field text)
RETURNS void
LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'be_template_check';

CREATE FUNCTION broadcast._template_render(source text, data jsonb)
RETURNS text
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'be_template_render';

CREATE FUNCTION broadcast._check_template_syntax(subject text, html text, text_body text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
	PERFORM broadcast._template_check(subject, 'subject');
	PERFORM broadcast._template_check(html, 'html');
	PERFORM broadcast._template_check(text_body, 'text_body');
END
$$;

/* the text part a message gets when its template has no text body */
CREATE FUNCTION broadcast.html_to_text(html text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_html_to_text';

/* a complete RFC 5322 message from its parts (previews, tests) */
CREATE FUNCTION broadcast.build_message(parts jsonb)
RETURNS text
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'be_build_message';

CREATE FUNCTION broadcast._unsub_token_make(secret bytea, workspace_id text, list_id text,
											email text, message_id text)
RETURNS text
LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'be_unsub_token_make';

/* reads a token without checking its signature (to find the workspace's secret) */
CREATE FUNCTION broadcast._unsub_token_parse(token text, OUT workspace_id text, OUT list_id text,
											 OUT email text, OUT message_id text)
RETURNS record
LANGUAGE C IMMUTABLE STRICT
AS 'MODULE_PATHNAME', 'be_unsub_token_parse';

CREATE FUNCTION broadcast._unsub_token_verify(token text, secret bytea)
RETURNS boolean
LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'be_unsub_token_verify';


/* ------------------------------------------------------------------------
 * Tables
 *
 * Every table carries workspace_id and every primary key starts with it, so
 * the schema can be distributed by workspace later.
 * ------------------------------------------------------------------------ */

CREATE TABLE broadcast.workspaces (
	workspace_id	text PRIMARY KEY CHECK (broadcast.is_valid_id(workspace_id)),
	name			text NOT NULL CHECK (name <> ''),
	timezone		text NOT NULL DEFAULT 'UTC',
	settings		jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
	created_at		timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE broadcast.workspaces IS 'Tenants: every other table belongs to one';

/* kept apart so workspace roles, which may read workspaces, never see them */
CREATE TABLE broadcast.workspace_secrets (
	workspace_id		text PRIMARY KEY REFERENCES broadcast.workspaces ON DELETE CASCADE,
	unsubscribe_secret	bytea NOT NULL CHECK (length(unsubscribe_secret) >= 32)
);

CREATE TABLE broadcast.workspace_grants (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	role_oid		oid NOT NULL,
	PRIMARY KEY (workspace_id, role_oid)
);
COMMENT ON TABLE broadcast.workspace_grants IS 'Which roles may use which workspace (see grant_workspace)';

CREATE TABLE broadcast.contacts (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	email			text NOT NULL CHECK (email = lower(email) AND broadcast.is_valid_email(email)),
	first_name		text,
	last_name		text,
	language		text,
	timezone		text,
	properties		jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(properties) = 'object'),
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, email)
);

CREATE TABLE broadcast.lists (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	list_id			text NOT NULL CHECK (broadcast.is_valid_id(list_id)),
	name			text NOT NULL CHECK (name <> ''),
	created_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, list_id)
);

CREATE TABLE broadcast.list_members (
	workspace_id	text NOT NULL,
	list_id			text NOT NULL,
	email			text NOT NULL,
	status			text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'pending', 'unsubscribed', 'bounced', 'complained')),
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, list_id, email),
	FOREIGN KEY (workspace_id, list_id) REFERENCES broadcast.lists ON DELETE CASCADE,
	FOREIGN KEY (workspace_id, email) REFERENCES broadcast.contacts ON DELETE CASCADE
);
/* expansion walks a workspace's members in email order across all lists (index-only) */
CREATE INDEX list_members_contact_idx ON broadcast.list_members (workspace_id, email)
	INCLUDE (list_id, status);

CREATE TABLE broadcast.suppressions (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	email			text NOT NULL CHECK (email = lower(email)),
	reason			text NOT NULL
		CHECK (reason IN ('hard_bounce', 'complaint', 'unsubscribe', 'soft_bounce', 'manual')),
	detail			text,
	created_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, email)
);
COMMENT ON TABLE broadcast.suppressions IS 'Addresses never mailed again by this workspace';

CREATE TABLE broadcast.templates (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	template_id		text NOT NULL CHECK (broadcast.is_valid_id(template_id)),
	version			integer NOT NULL CHECK (version > 0),
	subject			text NOT NULL CHECK (subject <> ''),
	html			text NOT NULL,
	text_body		text,
	from_email		text CHECK (broadcast.is_valid_email(from_email)),
	from_name		text,
	reply_to		text CHECK (broadcast.is_valid_email(reply_to)),
	created_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, template_id, version)
);
COMMENT ON TABLE broadcast.templates IS 'Immutable template versions; create_template adds one';

CREATE FUNCTION broadcast._templates_immutable()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	RAISE EXCEPTION USING
		ERRCODE = 'object_not_in_prerequisite_state',
		MESSAGE = 'template versions cannot be changed',
		HINT = 'Call broadcast.create_template() to add a new version.';
END
$$;
CREATE TRIGGER templates_immutable BEFORE UPDATE ON broadcast.templates
	FOR EACH ROW EXECUTE FUNCTION broadcast._templates_immutable();

/* a platform-owned provider account that several workspaces may send through */
CREATE TABLE broadcast.shared_integrations (
	shared_id		text PRIMARY KEY CHECK (broadcast.is_valid_id(shared_id)),
	provider		text NOT NULL
		CHECK (provider IN ('smtp', 'sendgrid', 'mailgun', 'postmark', 'ses', 'sparkpost', 'mailjet', 'resend')),
	config			jsonb NOT NULL DEFAULT '{}',
	secret			text,
	rate_per_second	numeric CHECK (rate_per_second > 0),
	created_at		timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE broadcast.integrations (
	workspace_id	text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	integration_id	text NOT NULL CHECK (broadcast.is_valid_id(integration_id)),
	provider		text NOT NULL
		CHECK (provider IN ('smtp', 'sendgrid', 'mailgun', 'postmark', 'ses', 'sparkpost', 'mailjet', 'resend')),
	config			jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
	rate_per_second	numeric CHECK (rate_per_second > 0),
	shared_id		text REFERENCES broadcast.shared_integrations,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, integration_id)
);
COMMENT ON COLUMN broadcast.integrations.rate_per_second IS
	'This workspace''s limit; a shared integration also has an account-wide limit';

/* no workspace role can read these */
CREATE TABLE broadcast.integration_secrets (
	workspace_id	text NOT NULL,
	integration_id	text NOT NULL,
	secret			text,
	webhook_secret	text,
	PRIMARY KEY (workspace_id, integration_id),
	FOREIGN KEY (workspace_id, integration_id) REFERENCES broadcast.integrations ON DELETE CASCADE
);

CREATE TABLE broadcast.broadcasts (
	workspace_id		text NOT NULL REFERENCES broadcast.workspaces ON DELETE CASCADE,
	broadcast_id		text NOT NULL CHECK (broadcast.is_valid_id(broadcast_id)),
	name				text NOT NULL CHECK (name <> ''),
	lists				text[] NOT NULL CHECK (cardinality(lists) >= 1),
	exclude_lists		text[] NOT NULL DEFAULT '{}',
	integration_id		text NOT NULL,
	template_id			text,
	variations			text[],
	ab_sample_percent	integer CHECK (ab_sample_percent BETWEEN 1 AND 100),
	ab_metric			text NOT NULL DEFAULT 'open' CHECK (ab_metric IN ('open', 'click')),
	ab_duration			interval NOT NULL DEFAULT '1 day',
	ab_auto				boolean NOT NULL DEFAULT true,
	status				text NOT NULL DEFAULT 'draft'
		CHECK (status IN ('draft', 'scheduled', 'processing', 'testing', 'test_completed',
						  'winner_selected', 'paused', 'completed', 'cancelled', 'failed')),
	paused_from			text,
	send_at				timestamptz,
	local_send_at		timestamp,
	send_timezone		text,
	recipient_timezone	boolean NOT NULL DEFAULT false,
	winner_template_id	text,
	total_recipients	bigint NOT NULL DEFAULT 0,
	test_recipients		bigint NOT NULL DEFAULT 0,
	enqueued_count		bigint NOT NULL DEFAULT 0,
	sent_count			bigint NOT NULL DEFAULT 0,
	failed_count		bigint NOT NULL DEFAULT 0,
	last_error			text,
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now(),
	scheduled_at		timestamptz,
	started_at			timestamptz,
	test_completed_at	timestamptz,
	winner_selected_at	timestamptz,
	paused_at			timestamptz,
	completed_at		timestamptz,
	cancelled_at		timestamptz,
	PRIMARY KEY (workspace_id, broadcast_id),
	FOREIGN KEY (workspace_id, integration_id) REFERENCES broadcast.integrations,
	CHECK ((template_id IS NULL) <> (variations IS NULL)),
	CHECK (variations IS NULL OR cardinality(variations) BETWEEN 2 AND 8),
	CHECK (variations IS NULL OR ab_sample_percent IS NOT NULL),
	CHECK ((status = 'paused') = (paused_from IS NOT NULL))
);

/* template versions pinned when the broadcast is scheduled: one row per variation */
CREATE TABLE broadcast.broadcast_variations (
	workspace_id	text NOT NULL,
	broadcast_id	text NOT NULL,
	variation		smallint NOT NULL CHECK (variation BETWEEN 0 AND 7),
	template_id		text NOT NULL,
	version			integer NOT NULL,
	PRIMARY KEY (workspace_id, broadcast_id, variation),
	FOREIGN KEY (workspace_id, broadcast_id) REFERENCES broadcast.broadcasts ON DELETE CASCADE,
	FOREIGN KEY (workspace_id, template_id, version) REFERENCES broadcast.templates
);

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
CREATE UNIQUE INDEX tasks_one_per_broadcast ON broadcast.tasks (workspace_id, broadcast_id)
	WHERE status IN ('pending', 'running', 'paused');
/* the scheduler's due scan reads only live tasks, whatever the workspace count */
CREATE INDEX tasks_due_idx ON broadcast.tasks (run_at) WHERE status IN ('pending', 'running');

/*
 * One row per (broadcast, recipient) still to send.  Rows are small: ids and
 * the address, never rendered content.  next_attempt_at doubles as the lease:
 * a claim pushes it into the future, so a crashed sender's rows come due
 * again by themselves.
 */
CREATE TABLE broadcast.email_queue (
	workspace_id	text NOT NULL,
	broadcast_id	text NOT NULL,
	email			text NOT NULL,
	integration_id	text NOT NULL,
	list_id			text NOT NULL,
	variation		smallint NOT NULL DEFAULT 0,
	message_id		uuid NOT NULL,
	status			text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'sending', 'dead')),
	attempts		smallint NOT NULL DEFAULT 0,
	next_attempt_at	timestamptz NOT NULL DEFAULT now(),
	last_error		text,
	PRIMARY KEY (workspace_id, broadcast_id, email)
) WITH (
	fillfactor = 90,
	autovacuum_vacuum_scale_factor = 0.01,
	autovacuum_vacuum_threshold = 10000,
	autovacuum_vacuum_insert_scale_factor = 0.05,
	autovacuum_analyze_scale_factor = 0.02,
	autovacuum_vacuum_cost_delay = 0
);
CREATE INDEX email_queue_due_idx ON broadcast.email_queue (workspace_id, integration_id, next_attempt_at)
	WHERE status IN ('pending', 'sending');

CREATE TABLE broadcast.message_history (
	workspace_id		text NOT NULL,
	message_id			uuid NOT NULL,
	broadcast_id		text,
	template_id			text,
	template_version	integer,
	variation			smallint,
	list_id				text,
	email				text NOT NULL,
	integration_id		text,
	provider			text,
	provider_message_id	text,
	status				text NOT NULL CHECK (status IN ('sent', 'failed')),
	attempts			smallint NOT NULL DEFAULT 1,
	error				text,
	sent_at				timestamptz,
	failed_at			timestamptz,
	delivered_at		timestamptz,
	opened_at			timestamptz,
	clicked_at			timestamptz,
	bounced_at			timestamptz,
	bounce_type			text CHECK (bounce_type IN ('hard', 'soft')),
	complained_at		timestamptz,
	unsubscribed_at		timestamptz,
	created_at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (workspace_id, message_id)
);
COMMENT ON TABLE broadcast.message_history IS
	'One row per message sent or failed; delivery events fill the event columns';

/* ------------------------------------------------------------------------
 * Access control
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast.is_admin()
RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT pg_catalog.pg_has_role('broadcast_admin', 'MEMBER') $$;

/* workspaces the current role was granted (directly or through a group) */
CREATE FUNCTION broadcast.my_workspaces()
RETURNS SETOF text
LANGUAGE sql STABLE
AS $$
	SELECT g.workspace_id
	  FROM broadcast.workspace_grants g
	  JOIN pg_catalog.pg_roles r ON r.oid = g.role_oid
	 WHERE pg_catalog.pg_has_role(r.oid, 'MEMBER')
$$;

CREATE FUNCTION broadcast.has_workspace_access(workspace_id text)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
	SELECT broadcast.is_admin()
		OR workspace_id IN (SELECT broadcast.my_workspaces())
$$;

CREATE FUNCTION broadcast._authorize(p_workspace_id text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
	PERFORM broadcast._check_id('workspace', p_workspace_id);
	IF NOT broadcast.has_workspace_access(p_workspace_id) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied for workspace %s', quote_literal(p_workspace_id)),
			HINT = 'An administrator can grant access with broadcast.grant_workspace().';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'undefined_object',
			MESSAGE = format('workspace %s does not exist', quote_literal(p_workspace_id));
	END IF;
END
$$;

/*
 * Used by SECURITY DEFINER functions, where current_user is the owner: the
 * session's role must be an administrator.
 */
CREATE FUNCTION broadcast._require_admin(action text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT pg_has_role(session_user, 'broadcast_admin', 'MEMBER') THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied to %s', action),
			HINT = 'Only members of broadcast_admin may do this.';
	END IF;
END
$$;

/*
 * Row level security: a workspace role sees only the rows of workspaces it
 * was granted.  Tables whose rows a workspace role may change get a policy
 * for all commands (USING doubles as WITH CHECK); secret tables get no
 * grants at all.  The table owner and superusers bypass RLS, so the workers
 * (which run as the bootstrap superuser by default) see everything.
 */
DO $rls$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['workspaces', 'contacts', 'lists', 'list_members', 'suppressions',
							 'templates', 'integrations', 'broadcasts', 'broadcast_variations',
							 'tasks', 'email_queue', 'message_history']
	LOOP
		EXECUTE format('ALTER TABLE broadcast.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('CREATE POLICY workspace_isolation ON broadcast.%I
						USING (broadcast.has_workspace_access(workspace_id))', t);
	END LOOP;
END
$rls$;

ALTER TABLE broadcast.workspace_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_grants ON broadcast.workspace_grants
	USING (broadcast.is_admin()
		   OR role_oid IN (SELECT oid FROM pg_catalog.pg_roles WHERE pg_catalog.pg_has_role(oid, 'MEMBER')));

/*
 * Workspace roles read everything of their workspaces.  They may change
 * their audience data directly (contacts, lists, members, and add
 * suppressions); everything the engine acts on (broadcasts, tasks, the
 * queue, pinned versions, template versions, integrations) changes only
 * through the API functions, which validate first.  Those run as the owner
 * (SECURITY DEFINER, pinned search_path) and authorise the session's role.
 */
GRANT SELECT ON broadcast.workspaces, broadcast.workspace_grants TO broadcast_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON
	broadcast.contacts, broadcast.lists, broadcast.list_members
	TO broadcast_user;
/* a suppression (bounce, complaint) cannot be lifted by a workspace role */
GRANT SELECT, INSERT ON broadcast.suppressions TO broadcast_user;
GRANT SELECT ON broadcast.broadcasts, broadcast.broadcast_variations, broadcast.tasks,
	broadcast.email_queue, broadcast.templates, broadcast.message_history, broadcast.integrations
	TO broadcast_user;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA broadcast TO broadcast_admin;

/* secrets: stored through SECURITY DEFINER functions, readable by administrators only */
REVOKE ALL ON broadcast.workspace_secrets, broadcast.integration_secrets, broadcast.shared_integrations
	FROM broadcast_user;

/* ------------------------------------------------------------------------
 * Workspaces and access
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast.create_workspace(
	workspace_id text,
	name text,
	timezone text DEFAULT 'UTC',
	settings jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad_key text;
BEGIN
	PERFORM broadcast._require_admin('create a workspace');
	PERFORM broadcast._check_id('workspace', create_workspace.workspace_id);
	IF create_workspace.name IS NULL OR btrim(create_workspace.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'workspace name must not be empty';
	END IF;
	PERFORM broadcast._check_timezone(create_workspace.timezone);
	IF settings IS NULL OR jsonb_typeof(settings) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'workspace settings must be a JSON object';
	END IF;
	SELECT k INTO bad_key FROM jsonb_object_keys(settings) k
	 WHERE k NOT IN ('sending_domain', 'unsubscribe_base_url', 'unsubscribe_mailto',
					 'default_from_email', 'default_from_name', 'soft_bounce_threshold')
	 LIMIT 1;
	IF bad_key IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown workspace setting %s', quote_literal(bad_key)),
			HINT = 'Known settings: sending_domain, unsubscribe_base_url, unsubscribe_mailto, default_from_email, default_from_name, soft_bounce_threshold.';
	END IF;
	IF settings ? 'unsubscribe_base_url'
	   AND (settings->>'unsubscribe_base_url') !~ '^https?://[^\s/?#]+[^\s]*$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unsubscribe_base_url must be an http or https URL',
			DETAIL = format('The value was %s.', settings->'unsubscribe_base_url');
	END IF;
	IF settings ? 'sending_domain'
	   AND (settings->>'sending_domain') !~ '^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'sending_domain must be a domain name',
			DETAIL = format('The value was %s.', settings->'sending_domain');
	END IF;
	IF settings ? 'default_from_email' THEN
		PERFORM broadcast._check_email(settings->>'default_from_email', 'default_from_email');
	END IF;
	IF settings ? 'default_from_name' THEN
		PERFORM broadcast._check_header_text('default_from_name', settings->>'default_from_name');
	END IF;
	IF settings ? 'soft_bounce_threshold'
	   AND (jsonb_typeof(settings->'soft_bounce_threshold') <> 'number'
			OR (settings->>'soft_bounce_threshold')::numeric < 1) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'soft_bounce_threshold must be a positive number';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = create_workspace.workspace_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('workspace %s already exists', quote_literal(create_workspace.workspace_id));
	END IF;

	INSERT INTO broadcast.workspaces (workspace_id, name, timezone, settings)
	VALUES (create_workspace.workspace_id, create_workspace.name, create_workspace.timezone, settings);
	/* 244 random bits from the server's strong random source */
	INSERT INTO broadcast.workspace_secrets (workspace_id, unsubscribe_secret)
	VALUES (create_workspace.workspace_id,
			uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
	RETURN create_workspace.workspace_id;
END
$$;

/* deletes a workspace and everything in it, history included */
CREATE FUNCTION broadcast.drop_workspace(workspace_id text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._require_admin('drop a workspace');
	PERFORM broadcast._authorize(drop_workspace.workspace_id);
	/* the queue and history have no foreign keys (they are the hot tables) */
	DELETE FROM broadcast.email_queue q WHERE q.workspace_id = drop_workspace.workspace_id;
	DELETE FROM broadcast.message_history h WHERE h.workspace_id = drop_workspace.workspace_id;
	/* broadcasts first: their pinned versions reference the templates */
	DELETE FROM broadcast.broadcasts b WHERE b.workspace_id = drop_workspace.workspace_id;
	DELETE FROM broadcast.workspaces w WHERE w.workspace_id = drop_workspace.workspace_id;
END
$$;

CREATE FUNCTION broadcast.grant_workspace(workspace_id text, role regrole)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._require_admin('grant workspace access');
	PERFORM broadcast._authorize(grant_workspace.workspace_id);
	IF role IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'role must not be NULL';
	END IF;
	INSERT INTO broadcast.workspace_grants (workspace_id, role_oid)
	VALUES (grant_workspace.workspace_id, role::oid)
	ON CONFLICT DO NOTHING;
	EXECUTE format('GRANT broadcast_user TO %s', role);
END
$$;

CREATE FUNCTION broadcast.revoke_workspace(workspace_id text, role regrole)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._require_admin('revoke workspace access');
	DELETE FROM broadcast.workspace_grants g
	 WHERE g.workspace_id = revoke_workspace.workspace_id AND g.role_oid = role::oid;
END
$$;

/* ------------------------------------------------------------------------
 * Contacts and lists
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast.upsert_contacts(workspace_id text, contacts jsonb)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
	bad record;
	n bigint;
BEGIN
	PERFORM broadcast._authorize(upsert_contacts.workspace_id);
	IF contacts IS NULL OR jsonb_typeof(contacts) <> 'array' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'contacts must be a JSON array of objects',
			HINT = 'For example: [{"email": "ada@example.com", "first_name": "Ada"}].';
	END IF;

	/* validate every element before writing anything */
	SELECT e.ord, e.value INTO bad
	  FROM jsonb_array_elements(contacts) WITH ORDINALITY AS e(value, ord)
	 WHERE jsonb_typeof(e.value) <> 'object'
		OR NOT (e.value ? 'email')
		OR jsonb_typeof(e.value->'email') <> 'string'
		OR NOT broadcast.is_valid_email(e.value->>'email')
		OR (e.value ? 'properties' AND jsonb_typeof(e.value->'properties') NOT IN ('object', 'null'))
		OR EXISTS (SELECT 1 FROM jsonb_object_keys(e.value) k
					WHERE k NOT IN ('email', 'first_name', 'last_name', 'language', 'timezone', 'properties'))
	 ORDER BY e.ord LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid contact at position %s', bad.ord),
			DETAIL = format('The element was %s.', left(bad.value::text, 200)),
			HINT = 'Each contact is an object with a valid "email" and optionally first_name, last_name, language, timezone (IANA name) and properties (an object).';
	END IF;

	SELECT t.tz AS tz INTO bad
	  FROM (SELECT DISTINCT e->>'timezone' AS tz FROM jsonb_array_elements(contacts) e
			 WHERE e->>'timezone' IS NOT NULL) t
	 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = t.tz)
	 LIMIT 1;
	IF FOUND THEN
		PERFORM broadcast._check_timezone(bad.tz);
	END IF;

	/* the last occurrence of an address in the payload wins */
	INSERT INTO broadcast.contacts AS c
		(workspace_id, email, first_name, last_name, language, timezone, properties)
	SELECT DISTINCT ON (lower(e.value->>'email'))
		   upsert_contacts.workspace_id, lower(e.value->>'email'),
		   e.value->>'first_name', e.value->>'last_name', e.value->>'language',
		   e.value->>'timezone', coalesce(nullif(e.value->'properties', 'null'), '{}')
	  FROM jsonb_array_elements(contacts) WITH ORDINALITY AS e(value, ord)
	 ORDER BY lower(e.value->>'email'), e.ord DESC
	ON CONFLICT ON CONSTRAINT contacts_pkey DO UPDATE SET
		first_name = coalesce(EXCLUDED.first_name, c.first_name),
		last_name = coalesce(EXCLUDED.last_name, c.last_name),
		language = coalesce(EXCLUDED.language, c.language),
		timezone = coalesce(EXCLUDED.timezone, c.timezone),
		properties = c.properties || EXCLUDED.properties,
		updated_at = now();
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

CREATE FUNCTION broadcast.create_list(workspace_id text, list_id text, name text)
RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM broadcast._authorize(create_list.workspace_id);
	PERFORM broadcast._check_id('list', create_list.list_id);
	IF create_list.name IS NULL OR btrim(create_list.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'list name must not be empty';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.lists l
				WHERE l.workspace_id = create_list.workspace_id AND l.list_id = create_list.list_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('list %s already exists in workspace %s',
							 quote_literal(create_list.list_id), quote_literal(create_list.workspace_id));
	END IF;
	INSERT INTO broadcast.lists (workspace_id, list_id, name)
	VALUES (create_list.workspace_id, create_list.list_id, create_list.name);
	RETURN create_list.list_id;
END
$$;

CREATE FUNCTION broadcast._require_list(p_workspace_id text, p_list_id text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM broadcast.lists l
					WHERE l.workspace_id = p_workspace_id AND l.list_id = p_list_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('list %s does not exist in workspace %s',
							 coalesce(quote_literal(p_list_id), 'NULL'), quote_literal(p_workspace_id));
	END IF;
END
$$;

CREATE FUNCTION broadcast.subscribe(
	workspace_id text,
	list_id text,
	emails text[],
	status text DEFAULT 'active')
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
	bad text;
	n bigint;
BEGIN
	PERFORM broadcast._authorize(subscribe.workspace_id);
	PERFORM broadcast._require_list(subscribe.workspace_id, subscribe.list_id);
	IF subscribe.status IS NULL OR subscribe.status NOT IN ('active', 'pending') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid subscription status %s', coalesce(quote_literal(subscribe.status), 'NULL')),
			HINT = 'Use "active", or "pending" for double opt-in; unsubscribe with broadcast.unsubscribe_contact().';
	END IF;
	IF emails IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'emails must not be NULL';
	END IF;
	SELECT e INTO bad FROM unnest(emails) e WHERE e IS NULL OR NOT broadcast.is_valid_email(e) LIMIT 1;
	IF FOUND THEN
		PERFORM broadcast._check_email(bad);
	END IF;

	INSERT INTO broadcast.contacts (workspace_id, email)
	SELECT DISTINCT subscribe.workspace_id, lower(e) FROM unnest(emails) e
	ON CONFLICT DO NOTHING;

	/* an explicit subscribe reactivates a member; suppressions still apply at send time */
	INSERT INTO broadcast.list_members AS m (workspace_id, list_id, email, status)
	SELECT DISTINCT subscribe.workspace_id, subscribe.list_id, lower(e), subscribe.status
	  FROM unnest(emails) e
	ON CONFLICT ON CONSTRAINT list_members_pkey DO UPDATE
		SET status = EXCLUDED.status, updated_at = now()
		WHERE m.status IS DISTINCT FROM EXCLUDED.status;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

CREATE FUNCTION broadcast.unsubscribe_contact(
	workspace_id text,
	email text,
	list_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	addr text := lower(unsubscribe_contact.email);
	n bigint;
BEGIN
	PERFORM broadcast._authorize_caller(unsubscribe_contact.workspace_id);
	PERFORM broadcast._check_email(unsubscribe_contact.email);
	IF unsubscribe_contact.list_id IS NOT NULL THEN
		PERFORM broadcast._require_list(unsubscribe_contact.workspace_id, unsubscribe_contact.list_id);
		UPDATE broadcast.list_members m SET status = 'unsubscribed', updated_at = now()
		 WHERE m.workspace_id = unsubscribe_contact.workspace_id
		   AND m.list_id = unsubscribe_contact.list_id AND m.email = addr;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n = 0 THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = format('%s is not a member of list %s', quote_literal(addr),
								 quote_literal(unsubscribe_contact.list_id));
		END IF;
		/* queued mail for broadcasts to this list is no longer wanted */
		DELETE FROM broadcast.email_queue q
		 WHERE q.workspace_id = unsubscribe_contact.workspace_id AND q.email = addr
		   AND q.list_id = unsubscribe_contact.list_id AND q.status = 'pending';
		RETURN n;
	END IF;

	IF NOT EXISTS (SELECT 1 FROM broadcast.contacts c
					WHERE c.workspace_id = unsubscribe_contact.workspace_id AND c.email = addr) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('contact %s does not exist in workspace %s', quote_literal(addr),
							 quote_literal(unsubscribe_contact.workspace_id));
	END IF;
	UPDATE broadcast.list_members m SET status = 'unsubscribed', updated_at = now()
	 WHERE m.workspace_id = unsubscribe_contact.workspace_id AND m.email = addr
	   AND m.status <> 'unsubscribed';
	GET DIAGNOSTICS n = ROW_COUNT;
	INSERT INTO broadcast.suppressions (workspace_id, email, reason)
	VALUES (unsubscribe_contact.workspace_id, addr, 'unsubscribe')
	ON CONFLICT DO NOTHING;
	DELETE FROM broadcast.email_queue q
	 WHERE q.workspace_id = unsubscribe_contact.workspace_id AND q.email = addr AND q.status = 'pending';
	RETURN n;
END
$$;

/* ------------------------------------------------------------------------
 * Templates
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast.create_template(
	workspace_id text,
	template_id text,
	subject text,
	html text,
	text_body text DEFAULT NULL,
	from_email text DEFAULT NULL,
	from_name text DEFAULT NULL,
	reply_to text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v integer;
BEGIN
	PERFORM broadcast._authorize_caller(create_template.workspace_id);
	PERFORM broadcast._check_id('template', create_template.template_id);
	IF subject IS NULL OR btrim(subject) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'template subject must not be empty';
	END IF;
	IF html IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'template html must not be NULL';
	END IF;
	PERFORM broadcast._check_header_text('subject', subject);
	PERFORM broadcast._check_header_text('from_name', from_name);
	IF from_email IS NOT NULL THEN
		PERFORM broadcast._check_email(from_email, 'from_email');
	END IF;
	IF reply_to IS NOT NULL THEN
		PERFORM broadcast._check_email(reply_to, 'reply_to');
	END IF;
	PERFORM broadcast._check_template_syntax(subject, html, text_body);

	/* serialise version numbering per template without blocking other templates */
	PERFORM pg_advisory_xact_lock(hashtext('broadcast.templates'),
								  hashtext(create_template.workspace_id || '/' || create_template.template_id));
	SELECT coalesce(max(t.version), 0) + 1 INTO v
	  FROM broadcast.templates t
	 WHERE t.workspace_id = create_template.workspace_id AND t.template_id = create_template.template_id;

	INSERT INTO broadcast.templates
		(workspace_id, template_id, version, subject, html, text_body, from_email, from_name, reply_to)
	VALUES (create_template.workspace_id, create_template.template_id, v, subject, html, text_body,
			lower(from_email), from_name, lower(reply_to));
	RETURN v;
END
$$;

CREATE FUNCTION broadcast._latest_template_version(p_workspace_id text, p_template_id text)
RETURNS integer
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	v integer;
BEGIN
	SELECT max(t.version) INTO v FROM broadcast.templates t
	 WHERE t.workspace_id = p_workspace_id AND t.template_id = p_template_id;
	IF v IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('template %s does not exist in workspace %s',
							 coalesce(quote_literal(p_template_id), 'NULL'), quote_literal(p_workspace_id));
	END IF;
	RETURN v;
END
$$;

/*
 * What templates see as "contact": the custom properties, then the columns
 * (which win on a name clash), and the properties again under "properties".
 */
CREATE FUNCTION broadcast._contact_data(p_workspace_id text, p_email text)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
	SELECT c.properties || jsonb_build_object(
			'email', c.email, 'first_name', c.first_name, 'last_name', c.last_name,
			'language', c.language, 'timezone', c.timezone, 'properties', c.properties)
	  FROM broadcast.contacts c
	 WHERE c.workspace_id = p_workspace_id AND c.email = p_email
$$;

/*
 * The one-click unsubscribe URL for an address: the workspace's
 * unsubscribe_base_url followed by a signed token.  NULL when the workspace
 * has no base URL.  Runs as the owner to read the workspace's secret.
 */
CREATE FUNCTION broadcast.unsubscribe_url(
	workspace_id text,
	email text,
	list_id text DEFAULT NULL,
	message_id uuid DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	base text;
	secret bytea;
BEGIN
	PERFORM broadcast._authorize_caller(unsubscribe_url.workspace_id);
	PERFORM broadcast._check_email(unsubscribe_url.email);
	SELECT w.settings->>'unsubscribe_base_url', s.unsubscribe_secret INTO base, secret
	  FROM broadcast.workspaces w JOIN broadcast.workspace_secrets s USING (workspace_id)
	 WHERE w.workspace_id = unsubscribe_url.workspace_id;
	IF base IS NULL THEN
		RETURN NULL;
	END IF;
	RETURN rtrim(base, '/') || '/' || broadcast._unsub_token_make(secret, unsubscribe_url.workspace_id,
		coalesce(unsubscribe_url.list_id, ''), lower(unsubscribe_url.email),
		coalesce(unsubscribe_url.message_id::text, ''));
END
$$;

/*
 * A preview of a template version (latest when version is NULL) for one
 * contact: the rendered subject, HTML and text parts, exactly as sending
 * would render them (without a broadcast or list).
 */
CREATE FUNCTION broadcast.render_template(
	workspace_id text,
	template_id text,
	version integer,
	email text)
RETURNS TABLE (subject text, html text, text_body text)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	t broadcast.templates;
	data jsonb;
	contact jsonb;
	rendered_html text;
BEGIN
	PERFORM broadcast._authorize(render_template.workspace_id);
	SELECT * INTO t FROM broadcast.templates x
	 WHERE x.workspace_id = render_template.workspace_id AND x.template_id = render_template.template_id
	   AND x.version = coalesce(render_template.version,
								broadcast._latest_template_version(render_template.workspace_id,
																   render_template.template_id));
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('template %s version %s does not exist in workspace %s',
							 quote_literal(render_template.template_id), render_template.version,
							 quote_literal(render_template.workspace_id));
	END IF;
	contact := broadcast._contact_data(render_template.workspace_id, lower(render_template.email));
	IF contact IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('contact %s does not exist in workspace %s',
							 broadcast._show(render_template.email), quote_literal(render_template.workspace_id));
	END IF;
	SELECT jsonb_build_object(
			'contact', contact,
			'workspace', jsonb_build_object('id', w.workspace_id, 'name', w.name),
			'broadcast', jsonb_build_object('id', NULL, 'name', NULL),
			'list', jsonb_build_object('id', NULL, 'name', NULL),
			'unsubscribe_url', broadcast.unsubscribe_url(w.workspace_id, lower(render_template.email)),
			'message_id', 'preview')
	  INTO data
	  FROM broadcast.workspaces w WHERE w.workspace_id = render_template.workspace_id;

	rendered_html := broadcast._template_render(t.html, data);
	RETURN QUERY SELECT broadcast._template_render(t.subject, data), rendered_html,
		coalesce(broadcast._template_render(t.text_body, data), broadcast.html_to_text(rendered_html));
END
$$;

/* ------------------------------------------------------------------------
 * Integrations
 * ------------------------------------------------------------------------ */

/* validates a provider's config; raises on the first problem */
CREATE FUNCTION broadcast._check_integration_config(provider text, config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
	allowed text[];
	required text[];
	k text;
BEGIN
	IF provider IS NULL OR provider NOT IN ('smtp', 'sendgrid', 'mailgun', 'postmark', 'ses',
											 'sparkpost', 'mailjet', 'resend') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown provider %s', coalesce(quote_literal(provider), 'NULL')),
			HINT = 'Providers: smtp, sendgrid, mailgun, postmark, ses, sparkpost, mailjet, resend.';
	END IF;
	IF config IS NULL OR jsonb_typeof(config) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'integration config must be a JSON object';
	END IF;

	CASE provider
		WHEN 'smtp' THEN
			required := ARRAY['host'];
			allowed := ARRAY['host', 'port', 'tls', 'username', 'ehlo_name', 'ca_file'];
		WHEN 'sendgrid' THEN
			required := '{}';
			allowed := ARRAY['endpoint'];
		WHEN 'mailgun' THEN
			required := ARRAY['domain'];
			allowed := ARRAY['endpoint', 'domain', 'region'];
		WHEN 'postmark' THEN
			required := '{}';
			allowed := ARRAY['endpoint', 'message_stream'];
		WHEN 'ses' THEN
			required := ARRAY['region', 'access_key_id'];
			allowed := ARRAY['endpoint', 'region', 'access_key_id', 'configuration_set'];
		WHEN 'sparkpost' THEN
			required := '{}';
			allowed := ARRAY['endpoint', 'region'];
		WHEN 'mailjet' THEN
			required := ARRAY['api_key'];
			allowed := ARRAY['endpoint', 'api_key'];
		WHEN 'resend' THEN
			required := '{}';
			allowed := ARRAY['endpoint'];
	END CASE;

	/* a CA bundle for providers behind a private certificate authority */
	allowed := allowed || 'ca_file'::text;
	FOREACH k IN ARRAY required LOOP
		IF NOT config ? k OR jsonb_typeof(config->k) <> 'string' OR config->>k = '' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('%s integration config is missing required key %s', provider, quote_literal(k)),
				HINT = format('Required keys for %s: %s.', provider, array_to_string(required, ', '));
		END IF;
	END LOOP;
	SELECT key INTO k FROM jsonb_object_keys(config) key WHERE key <> ALL (allowed) LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown key %s in %s integration config', quote_literal(k), provider),
			HINT = format('Keys for %s: %s.', provider, array_to_string(allowed, ', '));
	END IF;

	IF config ? 'endpoint' AND coalesce(config->>'endpoint', '') !~ '^https?://[A-Za-z0-9.\[\]:-]+(/[^\s]*)?$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'integration endpoint must be an http or https URL',
			DETAIL = format('The value was %s.', config->'endpoint');
	END IF;
	IF config ? 'region' AND provider IN ('mailgun', 'sparkpost') AND config->>'region' NOT IN ('us', 'eu') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s region must be "us" or "eu"', provider);
	END IF;
	IF provider = 'ses' AND config->>'region' !~ '^[a-z]{2}(-[a-z]+)+-[0-9]+$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid AWS region %s', quote_literal(config->>'region')),
			HINT = 'Use a region code such as "eu-west-1".';
	END IF;
	IF provider = 'smtp' THEN
		IF config->>'host' !~ '^[A-Za-z0-9.:\[\]-]+$' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid SMTP host %s', quote_literal(config->>'host'));
		END IF;
		IF config ? 'port' AND (jsonb_typeof(config->'port') <> 'number'
								OR (config->>'port')::numeric NOT BETWEEN 1 AND 65535
								OR (config->>'port')::numeric <> trunc((config->>'port')::numeric)) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'SMTP port must be an integer between 1 and 65535';
		END IF;
		IF config ? 'tls' AND coalesce(config->>'tls', '') NOT IN ('starttls', 'implicit', 'none') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid SMTP tls mode %s', config->'tls'),
				HINT = 'Use "starttls" (the default), "implicit" or "none".';
		END IF;
		IF config ? 'username' AND secret IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'SMTP username given without a password',
				HINT = 'Pass the password as the secret argument.';
		END IF;
		IF config ? 'ehlo_name' AND config->>'ehlo_name' !~ '^[A-Za-z0-9.-]+$' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid EHLO name %s', config->'ehlo_name');
		END IF;
	ELSIF secret IS NULL OR secret = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s integration requires a secret', provider),
			HINT = CASE provider
				WHEN 'ses' THEN 'Pass the AWS secret access key (or a JSON object {"secret_access_key": ..., "session_token": ...}).'
				WHEN 'mailjet' THEN 'Pass the Mailjet API secret key; the public key goes in config.api_key.'
				ELSE 'Pass the provider''s API key as the secret argument.' END;
	END IF;
	IF secret ~ '[\x00-\x1f\x7f]' AND provider <> 'ses' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'integration secret must not contain control characters';
	END IF;
END
$$;

CREATE FUNCTION broadcast.create_integration(
	workspace_id text,
	integration_id text,
	provider text,
	config jsonb,
	secret text DEFAULT NULL,
	rate_per_second numeric DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* runs as the owner to store the secret: authorize the session's role explicitly */
	PERFORM broadcast._authorize_caller(create_integration.workspace_id);
	PERFORM broadcast._check_id('integration', create_integration.integration_id);
	PERFORM broadcast._check_integration_config(provider, config, secret);
	IF create_integration.rate_per_second IS NOT NULL AND create_integration.rate_per_second <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second must be positive',
			HINT = 'Pass NULL for no workspace limit.';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.integrations i
				WHERE i.workspace_id = create_integration.workspace_id
				  AND i.integration_id = create_integration.integration_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('integration %s already exists in workspace %s',
							 quote_literal(create_integration.integration_id),
							 quote_literal(create_integration.workspace_id));
	END IF;
	INSERT INTO broadcast.integrations (workspace_id, integration_id, provider, config, rate_per_second)
	VALUES (create_integration.workspace_id, create_integration.integration_id, provider, config,
			create_integration.rate_per_second);
	INSERT INTO broadcast.integration_secrets (workspace_id, integration_id, secret)
	VALUES (create_integration.workspace_id, create_integration.integration_id, secret);
	RETURN create_integration.integration_id;
END
$$;

CREATE FUNCTION broadcast.create_shared_integration(
	shared_id text,
	provider text,
	config jsonb,
	secret text DEFAULT NULL,
	rate_per_second numeric DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._require_admin('create a shared integration');
	PERFORM broadcast._check_id('shared integration', shared_id);
	PERFORM broadcast._check_integration_config(provider, config, secret);
	IF rate_per_second IS NOT NULL AND rate_per_second <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second must be positive';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.shared_integrations s WHERE s.shared_id = create_shared_integration.shared_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('shared integration %s already exists', quote_literal(shared_id));
	END IF;
	INSERT INTO broadcast.shared_integrations (shared_id, provider, config, secret, rate_per_second)
	VALUES (shared_id, provider, config, secret, rate_per_second);
	RETURN shared_id;
END
$$;

/* lets a workspace send through a platform account, under its own share of the limit */
CREATE FUNCTION broadcast.attach_shared_integration(
	workspace_id text,
	integration_id text,
	shared_id text,
	rate_per_second numeric DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s broadcast.shared_integrations;
BEGIN
	PERFORM broadcast._require_admin('attach a shared integration');
	PERFORM broadcast._authorize(attach_shared_integration.workspace_id);
	PERFORM broadcast._check_id('integration', attach_shared_integration.integration_id);
	SELECT * INTO s FROM broadcast.shared_integrations x WHERE x.shared_id = attach_shared_integration.shared_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('shared integration %s does not exist',
							 coalesce(quote_literal(attach_shared_integration.shared_id), 'NULL'));
	END IF;
	IF attach_shared_integration.rate_per_second IS NOT NULL AND attach_shared_integration.rate_per_second <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'rate_per_second must be positive';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.integrations i
				WHERE i.workspace_id = attach_shared_integration.workspace_id
				  AND i.integration_id = attach_shared_integration.integration_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('integration %s already exists in workspace %s',
							 quote_literal(attach_shared_integration.integration_id),
							 quote_literal(attach_shared_integration.workspace_id));
	END IF;
	INSERT INTO broadcast.integrations (workspace_id, integration_id, provider, config, rate_per_second, shared_id)
	VALUES (attach_shared_integration.workspace_id, attach_shared_integration.integration_id,
			s.provider, '{}', attach_shared_integration.rate_per_second, s.shared_id);
	RETURN attach_shared_integration.integration_id;
END
$$;

/*
 * In SECURITY DEFINER functions current_user is the owner, so access is
 * checked for the session's role.  A role that SET ROLEs to something
 * weaker keeps its own login's rights, never more.
 */
CREATE FUNCTION broadcast._authorize_caller(p_workspace_id text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_id('workspace', p_workspace_id);
	IF NOT (pg_has_role(session_user, 'broadcast_admin', 'MEMBER')
			OR EXISTS (SELECT 1 FROM broadcast.workspace_grants g
						JOIN pg_roles r ON r.oid = g.role_oid
					   WHERE g.workspace_id = p_workspace_id
						 AND pg_has_role(session_user, r.oid, 'MEMBER'))) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied for workspace %s', quote_literal(p_workspace_id)),
			HINT = 'An administrator can grant access with broadcast.grant_workspace().';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('workspace %s does not exist', quote_literal(p_workspace_id));
	END IF;
END
$$;

/* integrations as workspace roles see them: no secrets */
CREATE VIEW broadcast.integrations_overview WITH (security_barrier) AS
SELECT i.workspace_id, i.integration_id, i.provider,
	   CASE WHEN i.shared_id IS NULL THEN i.config ELSE '{}'::jsonb END AS config,
	   i.rate_per_second, i.shared_id,
	   (s.secret IS NOT NULL OR sh.secret IS NOT NULL) AS has_secret,
	   i.created_at
  FROM broadcast.integrations i
  LEFT JOIN broadcast.integration_secrets s USING (workspace_id, integration_id)
  LEFT JOIN broadcast.shared_integrations sh ON sh.shared_id = i.shared_id
 WHERE broadcast.has_workspace_access(i.workspace_id);
GRANT SELECT ON broadcast.integrations_overview TO broadcast_user, broadcast_admin;

/* ------------------------------------------------------------------------
 * Broadcasts
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast._get_broadcast(p_workspace_id text, p_broadcast_id text, p_lock boolean DEFAULT true)
RETURNS broadcast.broadcasts
LANGUAGE plpgsql
AS $$
DECLARE
	b broadcast.broadcasts;
BEGIN
	PERFORM broadcast._check_id('broadcast', p_broadcast_id);
	IF p_lock THEN
		SELECT * INTO b FROM broadcast.broadcasts x
		 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = p_broadcast_id
		   FOR UPDATE;
	ELSE
		SELECT * INTO b FROM broadcast.broadcasts x
		 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = p_broadcast_id;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('broadcast %s does not exist in workspace %s',
							 quote_literal(p_broadcast_id), quote_literal(p_workspace_id));
	END IF;
	RETURN b;
END
$$;

CREATE FUNCTION broadcast._state_error(b broadcast.broadcasts, action text, allowed text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
		MESSAGE = format('cannot %s broadcast %s while it is %s', action, quote_literal(b.broadcast_id), b.status),
		DETAIL = format('This is allowed only while the broadcast is %s.', allowed);
END
$$;

/* checks the audience, sender and content settings shared by create and update */
CREATE FUNCTION broadcast._check_broadcast_settings(
	p_workspace_id text, p_lists text[], p_exclude_lists text[], p_integration_id text,
	p_template_id text, p_variations text[], p_ab_sample_percent integer, p_ab_metric text,
	p_ab_duration interval)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	l text;
	t text;
BEGIN
	IF p_lists IS NULL OR cardinality(p_lists) = 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a broadcast needs at least one list';
	END IF;
	FOREACH l IN ARRAY p_lists || coalesce(p_exclude_lists, '{}') LOOP
		PERFORM broadcast._require_list(p_workspace_id, l);
	END LOOP;
	IF NOT EXISTS (SELECT 1 FROM broadcast.integrations i
					WHERE i.workspace_id = p_workspace_id AND i.integration_id = p_integration_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('integration %s does not exist in workspace %s',
							 coalesce(quote_literal(p_integration_id), 'NULL'), quote_literal(p_workspace_id));
	END IF;
	IF (p_template_id IS NULL) = (p_variations IS NULL) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a broadcast needs either template_id or variations, not both',
			HINT = 'Pass template_id for a plain send, or 2 to 8 template ids in variations for an A/B test.';
	END IF;
	IF p_template_id IS NOT NULL THEN
		PERFORM broadcast._latest_template_version(p_workspace_id, p_template_id);
		IF p_ab_sample_percent IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'ab_sample_percent needs variations',
				HINT = 'Pass 2 to 8 template ids in variations to run an A/B test.';
		END IF;
		RETURN;
	END IF;
	IF cardinality(p_variations) NOT BETWEEN 2 AND 8
	   OR (SELECT count(DISTINCT v) FROM unnest(p_variations) v) <> cardinality(p_variations) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'an A/B test needs 2 to 8 distinct variations',
			DETAIL = format('The variations were: %s.', array_to_string(p_variations, ', ', 'NULL'));
	END IF;
	FOREACH t IN ARRAY p_variations LOOP
		PERFORM broadcast._latest_template_version(p_workspace_id, t);
	END LOOP;
	IF p_ab_sample_percent IS NULL OR p_ab_sample_percent NOT BETWEEN 1 AND 100 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('ab_sample_percent must be between 1 and 100, got %s',
							 coalesce(p_ab_sample_percent::text, 'NULL')),
			HINT = 'It is the share of the audience that receives the test variations.';
	END IF;
	IF p_ab_metric IS NULL OR p_ab_metric NOT IN ('open', 'click') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('ab_metric must be "open" or "click", got %s', coalesce(quote_literal(p_ab_metric), 'NULL'));
	END IF;
	IF p_ab_duration IS NOT NULL AND p_ab_duration <= interval '0' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'ab_duration must be positive';
	END IF;
END
$$;

CREATE FUNCTION broadcast.create_broadcast(
	workspace_id text,
	broadcast_id text,
	name text,
	lists text[],
	integration_id text,
	template_id text DEFAULT NULL,
	variations text[] DEFAULT NULL,
	ab_sample_percent integer DEFAULT NULL,
	ab_metric text DEFAULT 'open',
	ab_duration interval DEFAULT NULL,
	ab_auto boolean DEFAULT true,
	exclude_lists text[] DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize_caller(create_broadcast.workspace_id);
	PERFORM broadcast._check_id('broadcast', create_broadcast.broadcast_id);
	IF create_broadcast.name IS NULL OR btrim(create_broadcast.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'broadcast name must not be empty';
	END IF;
	PERFORM broadcast._check_broadcast_settings(create_broadcast.workspace_id, create_broadcast.lists,
		create_broadcast.exclude_lists, create_broadcast.integration_id, create_broadcast.template_id,
		create_broadcast.variations, create_broadcast.ab_sample_percent, create_broadcast.ab_metric,
		create_broadcast.ab_duration);
	IF create_broadcast.ab_auto IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'ab_auto must not be NULL';
	END IF;
	IF EXISTS (SELECT 1 FROM broadcast.broadcasts b
				WHERE b.workspace_id = create_broadcast.workspace_id
				  AND b.broadcast_id = create_broadcast.broadcast_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = format('broadcast %s already exists in workspace %s',
							 quote_literal(create_broadcast.broadcast_id), quote_literal(create_broadcast.workspace_id));
	END IF;

	INSERT INTO broadcast.broadcasts
		(workspace_id, broadcast_id, name, lists, exclude_lists, integration_id, template_id,
		 variations, ab_sample_percent, ab_metric, ab_duration, ab_auto)
	VALUES (create_broadcast.workspace_id, create_broadcast.broadcast_id, create_broadcast.name,
			ARRAY(SELECT DISTINCT l FROM unnest(create_broadcast.lists) l ORDER BY 1),
			coalesce(create_broadcast.exclude_lists, '{}'), create_broadcast.integration_id,
			create_broadcast.template_id, create_broadcast.variations, create_broadcast.ab_sample_percent,
			create_broadcast.ab_metric, coalesce(create_broadcast.ab_duration, interval '1 day'),
			create_broadcast.ab_auto);
	RETURN create_broadcast.broadcast_id;
END
$$;

/* NULL arguments leave a setting as it is */
CREATE FUNCTION broadcast.update_broadcast(
	workspace_id text,
	broadcast_id text,
	name text DEFAULT NULL,
	lists text[] DEFAULT NULL,
	integration_id text DEFAULT NULL,
	template_id text DEFAULT NULL,
	variations text[] DEFAULT NULL,
	ab_sample_percent integer DEFAULT NULL,
	ab_metric text DEFAULT NULL,
	ab_duration interval DEFAULT NULL,
	ab_auto boolean DEFAULT NULL,
	exclude_lists text[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	content_changed boolean;
BEGIN
	PERFORM broadcast._authorize_caller(update_broadcast.workspace_id);
	b := broadcast._get_broadcast(update_broadcast.workspace_id, update_broadcast.broadcast_id);
	IF b.status NOT IN ('draft', 'scheduled', 'paused') THEN
		PERFORM broadcast._state_error(b, 'update', 'draft, scheduled or paused');
	END IF;
	IF update_broadcast.name IS NOT NULL AND btrim(update_broadcast.name) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'broadcast name must not be empty';
	END IF;
	content_changed := update_broadcast.lists IS NOT NULL OR update_broadcast.exclude_lists IS NOT NULL
		OR update_broadcast.template_id IS NOT NULL OR update_broadcast.variations IS NOT NULL
		OR update_broadcast.ab_sample_percent IS NOT NULL OR update_broadcast.ab_metric IS NOT NULL
		OR update_broadcast.ab_duration IS NOT NULL OR update_broadcast.ab_auto IS NOT NULL;
	/* once sending has started, only the name and the integration may change */
	IF content_changed AND b.status = 'paused' AND b.paused_from <> 'scheduled' THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('cannot change the audience or content of broadcast %s after sending started',
							 quote_literal(b.broadcast_id)),
			HINT = 'Cancel it and create a new broadcast instead.';
	END IF;

	b.name := coalesce(update_broadcast.name, b.name);
	IF update_broadcast.lists IS NOT NULL THEN
		b.lists := ARRAY(SELECT DISTINCT l FROM unnest(update_broadcast.lists) l ORDER BY 1);
	END IF;
	b.exclude_lists := coalesce(update_broadcast.exclude_lists, b.exclude_lists);
	b.integration_id := coalesce(update_broadcast.integration_id, b.integration_id);
	IF update_broadcast.template_id IS NOT NULL THEN
		b.template_id := update_broadcast.template_id;
		b.variations := NULL;
		b.ab_sample_percent := NULL;
	ELSIF update_broadcast.variations IS NOT NULL THEN
		b.variations := update_broadcast.variations;
		b.template_id := NULL;
	END IF;
	b.ab_sample_percent := coalesce(update_broadcast.ab_sample_percent, b.ab_sample_percent);
	b.ab_metric := coalesce(update_broadcast.ab_metric, b.ab_metric);
	b.ab_duration := coalesce(update_broadcast.ab_duration, b.ab_duration);
	b.ab_auto := coalesce(update_broadcast.ab_auto, b.ab_auto);
	PERFORM broadcast._check_broadcast_settings(b.workspace_id, b.lists, b.exclude_lists, b.integration_id,
		b.template_id, b.variations, b.ab_sample_percent, b.ab_metric, b.ab_duration);

	UPDATE broadcast.broadcasts x SET
		name = b.name, lists = b.lists, exclude_lists = b.exclude_lists, integration_id = b.integration_id,
		template_id = b.template_id, variations = b.variations, ab_sample_percent = b.ab_sample_percent,
		ab_metric = b.ab_metric, ab_duration = b.ab_duration, ab_auto = b.ab_auto, updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	/* a scheduled broadcast sends what was current when it was last changed */
	IF b.status <> 'draft' AND content_changed THEN
		PERFORM broadcast._pin_versions(b.workspace_id, b.broadcast_id);
	END IF;
	RETURN b.broadcast_id;
END
$$;

/* pins the latest version of every variation template, in one statement */
CREATE FUNCTION broadcast._pin_versions(p_workspace_id text, p_broadcast_id text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
	DELETE FROM broadcast.broadcast_variations v
	 WHERE v.workspace_id = p_workspace_id AND v.broadcast_id = p_broadcast_id;
	INSERT INTO broadcast.broadcast_variations (workspace_id, broadcast_id, variation, template_id, version)
	SELECT b.workspace_id, b.broadcast_id, (t.ord - 1)::smallint, t.template_id,
		   (SELECT max(x.version) FROM broadcast.templates x
			 WHERE x.workspace_id = b.workspace_id AND x.template_id = t.template_id)
	  FROM broadcast.broadcasts b,
		   unnest(coalesce(b.variations, ARRAY[b.template_id])) WITH ORDINALITY AS t(template_id, ord)
	 WHERE b.workspace_id = p_workspace_id AND b.broadcast_id = p_broadcast_id;
END
$$;

CREATE FUNCTION broadcast._schedule(
	p_workspace_id text, p_broadcast_id text, p_send_at timestamptz,
	p_local_time timestamp, p_timezone text, p_recipient_timezone boolean)
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	l text;
	task_run_at timestamptz;
BEGIN
	PERFORM broadcast._authorize_caller(p_workspace_id);
	b := broadcast._get_broadcast(p_workspace_id, p_broadcast_id);
	IF b.status NOT IN ('draft', 'scheduled') THEN
		PERFORM broadcast._state_error(b, 'schedule', 'draft or scheduled');
	END IF;
	IF b.status = 'scheduled' AND EXISTS (
		SELECT 1 FROM broadcast.tasks t
		 WHERE t.workspace_id = p_workspace_id AND t.broadcast_id = p_broadcast_id
		   AND t.status = 'running') THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('broadcast %s is already starting', quote_literal(p_broadcast_id));
	END IF;
	IF p_send_at IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'send time must not be NULL';
	END IF;
	/* the lists or templates may have been dropped since the draft was made */
	FOREACH l IN ARRAY b.lists || b.exclude_lists LOOP
		PERFORM broadcast._require_list(p_workspace_id, l);
	END LOOP;

	IF p_recipient_timezone THEN
		/* the earliest zone on Earth reaches the local time first; expand now, send per zone */
		IF (p_local_time AT TIME ZONE 'Etc/GMT+12') < now() THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('local send time %s has already passed in every time zone', p_local_time),
				HINT = 'Choose a later time.';
		END IF;
		task_run_at := least(now(), p_local_time AT TIME ZONE 'Etc/GMT-14');
	ELSE
		IF p_send_at < now() - interval '1 minute' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('send time %s is in the past', p_send_at),
				HINT = 'Omit send_at to send now, or choose a time in the future.';
		END IF;
		task_run_at := greatest(p_send_at, now());
	END IF;

	PERFORM broadcast._pin_versions(p_workspace_id, p_broadcast_id);
	SELECT v.template_id INTO l
	  FROM broadcast.broadcast_variations v
	  JOIN broadcast.templates t USING (workspace_id, template_id, version)
	  JOIN broadcast.workspaces w USING (workspace_id)
	 WHERE v.workspace_id = p_workspace_id AND v.broadcast_id = p_broadcast_id
	   AND t.from_email IS NULL AND w.settings->>'default_from_email' IS NULL
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('template %s has no from_email', quote_literal(l)),
			HINT = 'Give the template a from_email, or set default_from_email in the workspace settings.';
	END IF;
	UPDATE broadcast.broadcasts x SET
		status = 'scheduled', send_at = p_send_at, local_send_at = p_local_time,
		send_timezone = p_timezone, recipient_timezone = coalesce(p_recipient_timezone, false),
		scheduled_at = now(), updated_at = now(), last_error = NULL
	 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = p_broadcast_id;

	UPDATE broadcast.tasks t SET run_at = task_run_at, updated_at = now()
	 WHERE t.workspace_id = p_workspace_id AND t.broadcast_id = p_broadcast_id AND t.status = 'pending';
	IF NOT FOUND THEN
		INSERT INTO broadcast.tasks (workspace_id, broadcast_id, run_at)
		VALUES (p_workspace_id, p_broadcast_id, task_run_at);
	END IF;
	PERFORM broadcast._wake_scheduler();
	RETURN p_send_at;
END
$$;

CREATE FUNCTION broadcast.schedule_broadcast(
	workspace_id text,
	broadcast_id text,
	send_at timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE sql
AS $$
	SELECT broadcast._schedule(workspace_id, broadcast_id, send_at, NULL, NULL, false)
$$;

/* send at a local date-time: in one time zone, or in each recipient's own zone */
CREATE FUNCTION broadcast.schedule_broadcast(
	workspace_id text,
	broadcast_id text,
	local_time timestamp,
	timezone text,
	recipient_timezone boolean DEFAULT false)
RETURNS timestamptz
LANGUAGE plpgsql
AS $$
BEGIN
	IF local_time IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'local_time must not be NULL';
	END IF;
	PERFORM broadcast._check_timezone(timezone);
	RETURN broadcast._schedule(workspace_id, broadcast_id, local_time AT TIME ZONE timezone,
							   local_time, timezone, coalesce(recipient_timezone, false));
END
$$;

CREATE FUNCTION broadcast.pause_broadcast(workspace_id text, broadcast_id text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
BEGIN
	PERFORM broadcast._authorize_caller(pause_broadcast.workspace_id);
	b := broadcast._get_broadcast(pause_broadcast.workspace_id, pause_broadcast.broadcast_id);
	IF b.status NOT IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected') THEN
		PERFORM broadcast._state_error(b, 'pause', 'scheduled or sending');
	END IF;
	UPDATE broadcast.broadcasts x SET status = 'paused', paused_from = b.status,
		   paused_at = now(), updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	UPDATE broadcast.tasks t SET status = 'paused', lease_until = NULL, updated_at = now()
	 WHERE t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id
	   AND t.status IN ('pending', 'running');
	RETURN 'paused';
END
$$;

CREATE FUNCTION broadcast.resume_broadcast(workspace_id text, broadcast_id text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
BEGIN
	PERFORM broadcast._authorize_caller(resume_broadcast.workspace_id);
	b := broadcast._get_broadcast(resume_broadcast.workspace_id, resume_broadcast.broadcast_id);
	IF b.status <> 'paused' THEN
		PERFORM broadcast._state_error(b, 'resume', 'paused');
	END IF;
	UPDATE broadcast.broadcasts x SET status = b.paused_from, paused_from = NULL,
		   paused_at = NULL, updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	/* a broadcast paused before it started keeps its send time; others go on now */
	UPDATE broadcast.tasks t
	   SET status = 'pending', updated_at = now(),
		   run_at = CASE WHEN b.paused_from = 'scheduled' THEN greatest(t.run_at, now()) ELSE now() END
	 WHERE t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id AND t.status = 'paused';
	PERFORM broadcast._wake_scheduler();
	PERFORM broadcast._wake_senders();
	RETURN b.paused_from;
END
$$;

CREATE FUNCTION broadcast.cancel_broadcast(workspace_id text, broadcast_id text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	dropped bigint;
BEGIN
	PERFORM broadcast._authorize_caller(cancel_broadcast.workspace_id);
	b := broadcast._get_broadcast(cancel_broadcast.workspace_id, cancel_broadcast.broadcast_id);
	IF b.status NOT IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused') THEN
		PERFORM broadcast._state_error(b, 'cancel', 'scheduled, sending or paused');
	END IF;
	/* rows a sender holds in flight finish on their own; history is kept */
	DELETE FROM broadcast.email_queue q
	 WHERE q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
	   AND q.status IN ('pending', 'dead');
	GET DIAGNOSTICS dropped = ROW_COUNT;
	UPDATE broadcast.broadcasts x SET status = 'cancelled', paused_from = NULL,
		   cancelled_at = now(), updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	UPDATE broadcast.tasks t SET status = 'cancelled', lease_until = NULL, updated_at = now()
	 WHERE t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id
	   AND t.status IN ('pending', 'running', 'paused');
	RETURN dropped;
END
$$;

CREATE FUNCTION broadcast.select_winner(workspace_id text, broadcast_id text, template_id text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
BEGIN
	PERFORM broadcast._authorize_caller(select_winner.workspace_id);
	b := broadcast._get_broadcast(select_winner.workspace_id, select_winner.broadcast_id);
	IF b.variations IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('broadcast %s is not an A/B test', quote_literal(b.broadcast_id));
	END IF;
	IF select_winner.template_id IS NULL OR NOT (select_winner.template_id = ANY (b.variations)) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('template %s is not a variation of broadcast %s',
							 coalesce(quote_literal(select_winner.template_id), 'NULL'), quote_literal(b.broadcast_id)),
			DETAIL = format('The variations are: %s.', array_to_string(b.variations, ', '));
	END IF;
	IF b.status NOT IN ('testing', 'test_completed') THEN
		PERFORM broadcast._state_error(b, 'select a winner for', 'testing or test_completed');
	END IF;
	UPDATE broadcast.broadcasts x SET winner_template_id = select_winner.template_id,
		   status = 'winner_selected', winner_selected_at = now(), updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	UPDATE broadcast.tasks t SET run_at = now(), updated_at = now()
	 WHERE t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id AND t.status = 'pending';
	PERFORM broadcast._wake_scheduler();
	RETURN select_winner.template_id;
END
$$;

/* ------------------------------------------------------------------------
 * Stats
 *
 * A plain SQL function so the planner inlines it: EXPLAIN of a call shows
 * the real plan, and row level security applies to the caller.
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast.broadcast_stats(workspace_id text, broadcast_id text)
RETURNS TABLE (
	template_id text,
	sent bigint,
	failed bigint,
	delivered bigint,
	opened bigint,
	clicked bigint,
	bounced bigint,
	complained bigint,
	unsubscribed bigint,
	open_rate numeric,
	click_rate numeric)
LANGUAGE sql STABLE
AS $$
	SELECT h.template_id,
		   count(*) FILTER (WHERE h.status = 'sent'),
		   count(*) FILTER (WHERE h.status = 'failed'),
		   count(h.delivered_at),
		   count(h.opened_at),
		   count(h.clicked_at),
		   count(h.bounced_at),
		   count(h.complained_at),
		   count(h.unsubscribed_at),
		   round(count(h.opened_at)::numeric
				 / nullif(greatest(count(h.delivered_at), count(*) FILTER (WHERE h.status = 'sent')), 0), 4),
		   round(count(h.clicked_at)::numeric
				 / nullif(greatest(count(h.delivered_at), count(*) FILTER (WHERE h.status = 'sent')), 0), 4)
	  FROM broadcast.message_history h
	 WHERE h.workspace_id = $1 AND h.broadcast_id = $2
	 GROUP BY GROUPING SETS ((h.template_id), ())
	 ORDER BY h.template_id NULLS FIRST
$$;
COMMENT ON FUNCTION broadcast.broadcast_stats(text, text) IS
	'Totals (template_id NULL) and per-variation counts of a broadcast''s messages';

/* ------------------------------------------------------------------------
 * Running the engine from SQL
 * ------------------------------------------------------------------------ */

/*
 * Runs due tasks (audience expansion, A/B phases, completion) in the calling
 * session, committing as it goes, for at most max_seconds.  With pg_cron:
 *   SELECT cron.schedule('broadcast-tasks', '* * * * *', 'CALL broadcast.run_tasks(50)');
 */
CREATE PROCEDURE broadcast.run_tasks(max_seconds integer DEFAULT 50)
LANGUAGE C
AS 'MODULE_PATHNAME', 'be_run_tasks';
REVOKE ALL ON PROCEDURE broadcast.run_tasks(integer) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE broadcast.run_tasks(integer) TO broadcast_admin;

/*
 * Sends due queue rows (claim, render, send, record) in the calling session,
 * committing as it goes, for at most max_seconds.  With pg_cron:
 *   SELECT cron.schedule('broadcast-send', '* * * * *', 'CALL broadcast.send_queue(50)');
 */
CREATE PROCEDURE broadcast.send_queue(max_seconds integer DEFAULT 50)
LANGUAGE C
AS 'MODULE_PATHNAME', 'be_send_queue';
REVOKE ALL ON PROCEDURE broadcast.send_queue(integer) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE broadcast.send_queue(integer) TO broadcast_admin;

/* puts a broadcast's dead letters back in the queue, to be sent again now */
CREATE FUNCTION broadcast.retry_dead_letters(workspace_id text, broadcast_id text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
	n bigint;
BEGIN
	PERFORM broadcast._authorize_caller(retry_dead_letters.workspace_id);
	b := broadcast._get_broadcast(retry_dead_letters.workspace_id, retry_dead_letters.broadcast_id);
	IF b.status = 'cancelled' THEN
		PERFORM broadcast._state_error(b, 'retry dead letters of', 'not cancelled');
	END IF;
	UPDATE broadcast.email_queue q
	   SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
	 WHERE q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id AND q.status = 'dead';
	GET DIAGNOSTICS n = ROW_COUNT;
	/* they count as failed until they are sent */
	UPDATE broadcast.broadcasts x SET failed_count = greatest(x.failed_count - n, 0), updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
	IF n > 0 THEN
		PERFORM broadcast._wake_senders();
	END IF;
	RETURN n;
END
$$;

/* ------------------------------------------------------------------------
 * Views for operators
 * ------------------------------------------------------------------------ */

/*
 * One row per broadcast that is scheduled or sending: progress, the average
 * send rate since it started, and the time left at that rate.
 */
CREATE VIEW broadcast.progress WITH (security_invoker = true) AS
SELECT b.workspace_id, b.broadcast_id, b.name, b.status, t.phase,
	   b.total_recipients AS total, b.enqueued_count AS enqueued,
	   b.sent_count AS sent, b.failed_count AS failed,
	   CASE WHEN b.total_recipients > 0
			THEN round(100.0 * (b.sent_count + b.failed_count) / b.total_recipients, 1) END AS percent,
	   CASE WHEN b.started_at IS NOT NULL AND now() > b.started_at
			THEN round((b.sent_count + b.failed_count)
					   / extract(epoch FROM now() - b.started_at)::numeric, 1) END AS rate_per_second,
	   CASE WHEN b.sent_count + b.failed_count > 0 AND now() > b.started_at
			THEN make_interval(secs => greatest(b.total_recipients - b.sent_count - b.failed_count, 0)
						 * extract(epoch FROM now() - b.started_at)::float8
						 / (b.sent_count + b.failed_count)) END AS eta,
	   b.started_at, b.send_at, t.last_error
  FROM broadcast.broadcasts b
  LEFT JOIN broadcast.tasks t
		 ON t.workspace_id = b.workspace_id AND t.broadcast_id = b.broadcast_id
		AND t.status IN ('pending', 'running', 'paused')
 WHERE b.status IN ('scheduled', 'processing', 'testing', 'test_completed', 'winner_selected', 'paused');
GRANT SELECT ON broadcast.progress TO broadcast_user, broadcast_admin;

/*
 * The (workspace, integration) pairs that have queued mail, with their
 * earliest due time: a loose index scan of email_queue_due_idx, one probe
 * per active pair, so its cost does not grow with idle workspaces.  The
 * senders start every cycle with it.
 */
CREATE VIEW broadcast.active_pairs AS
WITH RECURSIVE p AS (
	(SELECT q.workspace_id, q.integration_id FROM broadcast.email_queue q
	  WHERE q.status IN ('pending', 'sending')
	  ORDER BY q.workspace_id, q.integration_id LIMIT 1)
	UNION ALL
	SELECT n.workspace_id, n.integration_id
	  FROM p, LATERAL (SELECT q.workspace_id, q.integration_id FROM broadcast.email_queue q
						WHERE q.status IN ('pending', 'sending')
						  AND (q.workspace_id, q.integration_id) > (p.workspace_id, p.integration_id)
						ORDER BY q.workspace_id, q.integration_id LIMIT 1) n
)
SELECT p.workspace_id, p.integration_id,
	   (SELECT min(q.next_attempt_at) FROM broadcast.email_queue q
		 WHERE q.workspace_id = p.workspace_id AND q.integration_id = p.integration_id
		   AND q.status IN ('pending', 'sending')) AS next_attempt_at
  FROM p;
GRANT SELECT ON broadcast.active_pairs TO broadcast_admin;

/* per workspace and integration: what waits, what is in flight, what is due, what died */
CREATE VIEW broadcast.queue_health WITH (security_invoker = true) AS
SELECT q.workspace_id, q.integration_id,
	   count(*) FILTER (WHERE q.status = 'pending') AS pending,
	   count(*) FILTER (WHERE q.status = 'sending') AS in_flight,
	   count(*) FILTER (WHERE q.status IN ('pending', 'sending') AND q.next_attempt_at <= now()) AS due,
	   count(*) FILTER (WHERE q.status = 'dead') AS dead,
	   min(q.next_attempt_at) FILTER (WHERE q.status = 'pending') AS next_attempt_at
  FROM broadcast.email_queue q
 GROUP BY q.workspace_id, q.integration_id;
GRANT SELECT ON broadcast.queue_health TO broadcast_user, broadcast_admin;

/* the scheduler and sender workers running now, from shared memory */
CREATE FUNCTION broadcast.worker_status(
	OUT kind text, OUT slot integer, OUT pid integer, OUT started_at timestamptz,
	OUT last_active timestamptz, OUT transactions bigint, OUT messages bigint)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'be_worker_status';
REVOKE ALL ON FUNCTION broadcast.worker_status() FROM PUBLIC;

CREATE VIEW broadcast.workers AS
SELECT w.kind, w.slot, w.pid, w.started_at, w.last_active, w.transactions, w.messages,
	   a.state, a.wait_event, a.query AS activity
  FROM broadcast.worker_status() w
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = w.pid;

/* token buckets, Retry-After pauses and circuit breakers, from shared memory */
CREATE FUNCTION broadcast.rate_limits(
	OUT scope text, OUT workspace_id text, OUT integration_id text,
	OUT rate_per_second float8, OUT tokens float8, OUT paused_until timestamptz,
	OUT breaker text, OUT consecutive_failures integer, OUT granted bigint, OUT throttled bigint)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'be_rate_limits';
REVOKE ALL ON FUNCTION broadcast.rate_limits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.worker_status(), broadcast.rate_limits() TO broadcast_admin;
GRANT SELECT ON broadcast.workers TO broadcast_admin;

/* messages that failed for good; re-queue them with retry_dead_letters() */
CREATE VIEW broadcast.dead_letters WITH (security_invoker = true) AS
SELECT q.workspace_id, q.broadcast_id, q.email, q.integration_id, q.attempts, q.last_error, q.message_id
  FROM broadcast.email_queue q
 WHERE q.status = 'dead';
GRANT SELECT ON broadcast.dead_letters TO broadcast_user, broadcast_admin;

/* ------------------------------------------------------------------------
 * Install-time checks
 * ------------------------------------------------------------------------ */
DO $preload$
BEGIN
	IF NOT ('broadcast_engine' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))) THEN
		RAISE WARNING 'broadcast_engine is not in shared_preload_libraries: no background workers will run'
			USING HINT = 'Add broadcast_engine to shared_preload_libraries and restart, or drive the engine with pg_cron: see docs/operations.md.';
	END IF;
END
$preload$;

/*
 * 86_optin_tracking: double opt-in and first-party open and click tracking
 * through the edge (issue 17).
 *
 * Double opt-in: subscribe(..., double_opt_in => true) leaves the member
 * 'pending', records the consent request and queues a confirmation message
 * in the workspace's opt-in broadcast ("double-opt-in", kind 'optin'),
 * which the senders send like any other, with their rate limits.  The
 * message's {{confirm_url}} is the edge's /c/<token>, signed with the
 * workspace's secret under its own MAC context; confirm_subscription()
 * makes the member 'active' and completes the consent record.
 *
 * Tracking: when the workspace's tracking setting (or the broadcast's
 * switch) is on, the senders rewrite the HTML's links to /t/c/<token> and
 * add the pixel /t/o/<token> (src/tracking.c); the edge calls track(),
 * which records the event through _apply_events(), the path of the
 * providers' events, and flags the opens and clicks of machines.
 *
 * Replaces _check_workspace_settings (40_events_input.sql: two more keys)
 * and subscribe (1.0: two more parameters).
 */

/* ------------------------------------------------------------------------
 * Tokens of other purposes, and the link rewriting (src/tracking_sql.c)
 * ------------------------------------------------------------------------ */

/* purpose: 'unsubscribe', 'confirm' or 'track'; each signs under its own MAC context */
CREATE FUNCTION broadcast._signed_token_make(purpose text, secret bytea, workspace_id text,
											 list_id text, email text, message_id text)
RETURNS text
LANGUAGE C IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'be_signed_token_make';

CREATE FUNCTION broadcast._signed_token_verify(purpose text, token text, secret bytea)
RETURNS boolean
LANGUAGE C IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'be_signed_token_verify';

/* what a sender does to the HTML of a tracked message (previews, tests) */
CREATE FUNCTION broadcast._track_rewrite(html text, base_url text, secret bytea, workspace_id text,
										 message_id text, unsubscribe_url text DEFAULT NULL)
RETURNS text
LANGUAGE C IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'be_track_rewrite';

/* an address as the edge saw it, or NULL when it is none */
CREATE FUNCTION broadcast._inet_or_null(v text)
RETURNS inet
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF v IS NULL OR v !~ '^[0-9A-Fa-f:.]{2,45}$' THEN
		RETURN NULL;
	END IF;
	RETURN v::inet;
EXCEPTION WHEN invalid_text_representation THEN
	RETURN NULL;
END
$$;

/* ------------------------------------------------------------------------
 * Columns and tables
 * ------------------------------------------------------------------------ */

ALTER TABLE broadcast.broadcasts
	ADD COLUMN kind text NOT NULL DEFAULT 'broadcast' CHECK (kind IN ('broadcast', 'optin')),
	ADD COLUMN tracking boolean;
COMMENT ON COLUMN broadcast.broadcasts.kind IS
	'optin: the workspace''s double opt-in confirmations (subscribe with double_opt_in), sent like a broadcast';
COMMENT ON COLUMN broadcast.broadcasts.tracking IS
	'First-party open and click tracking; NULL: the workspace''s tracking setting';
/* the senders compose with these */
CREATE TRIGGER cache_generation_engagement
	AFTER UPDATE OF kind, tracking ON broadcast.broadcasts
	FOR EACH STATEMENT EXECUTE FUNCTION broadcast._bump_generation();

/*
 * true: every open (click) the edge saw for the message was a machine's;
 * false: a person's was seen; NULL: none classified (a provider's event
 * only), counted as a person's.
 */
ALTER TABLE broadcast.message_history
	ADD COLUMN open_machine boolean,
	ADD COLUMN click_machine boolean;

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

/*
 * What the edge saw, one row per message, event, link and kind of client
 * (hits counts repeats), so a message has at most 2 x (links + 1) rows.
 */
CREATE TABLE broadcast.tracked_events (
	workspace_id	text NOT NULL,
	message_id		uuid NOT NULL,
	broadcast_id	text,
	event			text NOT NULL CHECK (event IN ('opened', 'clicked')),
	link_index		integer NOT NULL CHECK (link_index BETWEEN -1 AND 9999),
	url				text,
	machine			boolean NOT NULL,
	machine_reason	text,
	first_at		timestamptz NOT NULL DEFAULT now(),
	last_at			timestamptz NOT NULL DEFAULT now(),
	hits			integer NOT NULL DEFAULT 1,
	PRIMARY KEY (workspace_id, message_id, event, link_index, machine),
	/* drop_workspace deletes the history by hand; these go with the workspace */
	FOREIGN KEY (workspace_id) REFERENCES broadcast.workspaces ON DELETE CASCADE
);
CREATE INDEX tracked_events_broadcast_idx ON broadcast.tracked_events (workspace_id, broadcast_id, event);
COMMENT ON TABLE broadcast.tracked_events IS
	'Opens and clicks seen by the edge (first-party tracking), machine ones flagged';

/*
 * A link may carry personal data (personalised URLs): forget_contact(),
 * which rewrites the history's address, drops the targets of that person's
 * clicks.  Only that function sets message_history.email, so the senders'
 * and the events' updates never fire this.
 */
CREATE FUNCTION broadcast._history_forget_links()
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
CREATE TRIGGER history_forget_links AFTER UPDATE OF email ON broadcast.message_history
	FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email)
	EXECUTE FUNCTION broadcast._history_forget_links();

GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.consents, broadcast.tracked_events TO broadcast_admin;
/* data: pg_dump carries them (10_backup.sql) */
SELECT pg_catalog.pg_extension_config_dump('broadcast.consents', '');
SELECT pg_catalog.pg_extension_config_dump('broadcast.tracked_events', '');

/* ------------------------------------------------------------------------
 * Workspace settings: double_opt_in and tracking
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast._check_base_url(name text, v text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF v IS NULL OR length(v) > 500
	   OR v !~ '^https?://([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&''()*+;=:@%/-]*)?$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s must be an http or https URL of at most 500 characters, without a query, spaces or quotes', name),
			DETAIL = format('The value was %s.', broadcast._show(v));
	END IF;
END
$$;

/*
 * double_opt_in: {"template_id", "integration_id", "base_url" (the edge's
 * /c), "expires_hours" (1 to 720, default 72), "page": {"title", "text",
 * "button", "done"}}; tracking: {"enabled", "base_url" (the edge's /t)}.
 */
CREATE FUNCTION broadcast._check_engagement_settings(settings jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o jsonb;
	bad text;
BEGIN
	IF settings ? 'double_opt_in' THEN
		o := settings->'double_opt_in';
		IF jsonb_typeof(o) <> 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'double_opt_in must be a JSON object',
				HINT = 'Its keys are template_id, integration_id, base_url, expires_hours and page.';
		END IF;
		SELECT k INTO bad FROM jsonb_object_keys(o) k
		 WHERE k NOT IN ('template_id', 'integration_id', 'base_url', 'expires_hours', 'page') LIMIT 1;
		IF bad IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unknown double_opt_in key %s', quote_literal(bad)),
				HINT = 'Its keys are template_id, integration_id, base_url, expires_hours and page.';
		END IF;
		IF jsonb_typeof(o->'template_id') IS DISTINCT FROM 'string' OR NOT broadcast.is_valid_id(o->>'template_id')
		   OR jsonb_typeof(o->'integration_id') IS DISTINCT FROM 'string' OR NOT broadcast.is_valid_id(o->>'integration_id') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'double_opt_in needs a template_id and an integration_id',
				HINT = 'The template is sent as the confirmation message; its {{confirm_url}} is the link to confirm.';
		END IF;
		IF jsonb_typeof(o->'base_url') IS DISTINCT FROM 'string' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'double_opt_in.base_url must be a string',
				HINT = 'The address of the edge''s /c route, for example "https://mail.example.com/c".';
		END IF;
		PERFORM broadcast._check_base_url('double_opt_in.base_url', o->>'base_url');
		IF o ? 'expires_hours' AND (jsonb_typeof(o->'expires_hours') <> 'number'
				OR (o->>'expires_hours') !~ '^[0-9]{1,4}$' OR (o->>'expires_hours')::integer NOT BETWEEN 1 AND 720) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'double_opt_in.expires_hours must be an integer between 1 and 720',
				DETAIL = format('The value was %s.', left(o->>'expires_hours', 100));
		END IF;
		IF o ? 'page' THEN
			IF jsonb_typeof(o->'page') <> 'object' THEN
				RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
					MESSAGE = 'double_opt_in.page must be a JSON object',
					HINT = 'Its keys are title, text, button and done, each a string.';
			END IF;
			SELECT e.k INTO bad FROM jsonb_each(o->'page') e(k, v)
			 WHERE e.k NOT IN ('title', 'text', 'button', 'done') OR jsonb_typeof(e.v) <> 'string'
				OR btrim(e.v #>> '{}') = ''
				OR length(e.v #>> '{}') > CASE e.k WHEN 'title' THEN 200 WHEN 'button' THEN 100 ELSE 2000 END
			 LIMIT 1;
			IF bad IS NOT NULL THEN
				RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
					MESSAGE = format('invalid double_opt_in.page key %s', quote_literal(bad)),
					HINT = 'Its keys are title (up to 200 characters), text, done (2000) and button (100), each a non-empty string.';
			END IF;
		END IF;
	END IF;

	IF settings ? 'tracking' THEN
		o := settings->'tracking';
		IF jsonb_typeof(o) <> 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'tracking must be a JSON object',
				HINT = 'Its keys are enabled (a boolean) and base_url.';
		END IF;
		SELECT k INTO bad FROM jsonb_object_keys(o) k WHERE k NOT IN ('enabled', 'base_url') LIMIT 1;
		IF bad IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unknown tracking key %s', quote_literal(bad)),
				HINT = 'Its keys are enabled (a boolean) and base_url.';
		END IF;
		IF o ? 'enabled' AND jsonb_typeof(o->'enabled') <> 'boolean' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'tracking.enabled must be true or false';
		END IF;
		IF jsonb_typeof(o->'base_url') IS DISTINCT FROM 'string' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'tracking.base_url must be a string',
				HINT = 'The address of the edge''s /t route, for example "https://mail.example.com/t".';
		END IF;
		PERFORM broadcast._check_base_url('tracking.base_url', o->>'base_url');
	END IF;
END
$$;

/* from 40_events_input.sql: double_opt_in and tracking added (checked by _check_engagement_settings) */
CREATE OR REPLACE FUNCTION broadcast._check_workspace_settings(settings jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
	v text;
	n numeric;
	bad_key text;
	page jsonb;
	lim integer;
BEGIN
	IF settings IS NULL OR jsonb_typeof(settings) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'workspace settings must be a JSON object';
	END IF;
	FOR k IN SELECT x FROM jsonb_object_keys(settings) x ORDER BY 1 LOOP
		IF k NOT IN ('sending_domain', 'unsubscribe_base_url', 'unsubscribe_mailto',
					 'default_from_email', 'default_from_name', 'soft_bounce_threshold',
					 'unsubscribe_page', 'double_opt_in', 'tracking') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unknown workspace setting %s', quote_literal(k)),
				HINT = 'Known settings: sending_domain, unsubscribe_base_url, unsubscribe_mailto, default_from_email, default_from_name, soft_bounce_threshold, unsubscribe_page, double_opt_in, tracking.';
		END IF;
		IF k NOT IN ('soft_bounce_threshold', 'unsubscribe_page', 'double_opt_in', 'tracking')
		   AND jsonb_typeof(settings->k) <> 'string' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('workspace setting %s must be a string', k),
				DETAIL = format('The value was %s.', settings->k);
		END IF;
	END LOOP;

	v := settings->>'unsubscribe_base_url';
	IF v IS NOT NULL AND (length(v) > 500
			OR v !~ '^https?://([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&''()*+;=:@%/?-]*)?$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unsubscribe_base_url must be an http or https URL of at most 500 characters, without spaces, control characters or any of <>",\{}|^`#',
			DETAIL = format('The value was %s.', broadcast._show(v)),
			HINT = 'For example "https://example.com/unsubscribe"; the signed token is appended after a "/".';
	END IF;

	v := settings->>'unsubscribe_mailto';
	IF v IS NOT NULL AND NOT broadcast.is_valid_email(v)
	   AND (length(v) > 500 OR v !~* '^mailto:[A-Za-z0-9.!#$%&''*+/=~_-]+@[A-Za-z0-9.-]+(\?[A-Za-z0-9._~!$&''()*+;=:@%/?-]*)?$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unsubscribe_mailto must be an email address or a mailto: URL',
			DETAIL = format('The value was %s.', broadcast._show(v)),
			HINT = 'For example "unsubscribe@example.com" or "mailto:unsubscribe@example.com?subject=unsubscribe", without spaces or line breaks.';
	END IF;

	IF settings ? 'soft_bounce_threshold' THEN
		IF jsonb_typeof(settings->'soft_bounce_threshold') <> 'number'
		   OR (settings->>'soft_bounce_threshold') !~ '^[0-9]+$' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'soft_bounce_threshold must be an integer between 1 and 1000',
				DETAIL = format('The value was %s.', left(settings->>'soft_bounce_threshold', 100));
		END IF;
		n := (settings->>'soft_bounce_threshold')::numeric;
		IF n NOT BETWEEN 1 AND 1000 THEN
			RAISE EXCEPTION USING ERRCODE = 'numeric_value_out_of_range',
				MESSAGE = 'soft_bounce_threshold must be an integer between 1 and 1000',
				DETAIL = format('The value was %s.', left(settings->>'soft_bounce_threshold', 100));
		END IF;
	END IF;

	/* the edge's unsubscribe page: plain texts, HTML-escaped when shown */
	IF settings ? 'unsubscribe_page' THEN
		page := settings->'unsubscribe_page';
		IF jsonb_typeof(page) <> 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'unsubscribe_page must be a JSON object',
				HINT = 'Its keys are title, text, button and done, each a string.';
		END IF;
		SELECT pk INTO bad_key FROM jsonb_object_keys(page) pk
		 WHERE pk NOT IN ('title', 'text', 'button', 'done')
		 LIMIT 1;
		IF bad_key IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unknown unsubscribe_page key %s', quote_literal(bad_key)),
				HINT = 'Its keys are title, text, button and done, each a string.';
		END IF;
		SELECT e.pk INTO bad_key FROM jsonb_each(page) e(pk, pv)
		 WHERE jsonb_typeof(e.pv) <> 'string' OR btrim(e.pv #>> '{}') = ''
		 LIMIT 1;
		IF bad_key IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unsubscribe_page.%s must be a non-empty string', bad_key);
		END IF;
		SELECT e.pk, CASE e.pk WHEN 'title' THEN 200 WHEN 'button' THEN 100 ELSE 2000 END
		  INTO bad_key, lim
		  FROM jsonb_each_text(page) e(pk, pv)
		 WHERE length(e.pv) > CASE e.pk WHEN 'title' THEN 200 WHEN 'button' THEN 100 ELSE 2000 END
		 LIMIT 1;
		IF bad_key IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('unsubscribe_page.%s is too long', bad_key),
				DETAIL = format('It may have at most %s characters.', lim);
		END IF;
	END IF;

	PERFORM broadcast._check_engagement_settings(settings);
END
$$;

/* ------------------------------------------------------------------------
 * Double opt-in
 * ------------------------------------------------------------------------ */

/*
 * The workspace's opt-in broadcast, made or brought up to date for list:
 * the template's latest version pinned, the integration of the setting,
 * the list among its lists (for {{list.name}}).  Returns its integration.
 */
CREATE FUNCTION broadcast._optin_broadcast(p_workspace_id text, p_list_id text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o jsonb;
	tpl text;
	integ text;
	ver integer;
	b record;
BEGIN
	SELECT w.settings->'double_opt_in' INTO o FROM broadcast.workspaces w
	 WHERE w.workspace_id = p_workspace_id;
	IF o IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('workspace %s has no double_opt_in setting', quote_literal(p_workspace_id)),
			HINT = 'Name the confirmation template, the integration and the edge''s /c address with broadcast.update_workspace(workspace_id, ''{"double_opt_in": {...}}'').';
	END IF;
	tpl := o->>'template_id';
	integ := o->>'integration_id';
	SELECT max(t.version) INTO ver FROM broadcast.templates t
	 WHERE t.workspace_id = p_workspace_id AND t.template_id = tpl;
	IF ver IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('the double opt-in template %s does not exist', quote_literal(tpl));
	END IF;
	IF NOT EXISTS (SELECT 1 FROM broadcast.integrations i
					WHERE i.workspace_id = p_workspace_id AND i.integration_id = integ) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('the double opt-in integration %s does not exist', quote_literal(integ));
	END IF;

	INSERT INTO broadcast.broadcasts AS x (workspace_id, broadcast_id, name, lists, integration_id,
										   template_id, status, kind, started_at)
	VALUES (p_workspace_id, 'double-opt-in', 'Double opt-in confirmations', ARRAY[p_list_id], integ,
			tpl, 'processing', 'optin', now())
	ON CONFLICT (workspace_id, broadcast_id) DO NOTHING;
	SELECT x.kind, x.lists, x.integration_id, x.template_id, x.status INTO b
	  FROM broadcast.broadcasts x
	 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = 'double-opt-in';
	IF b.kind <> 'optin' THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = 'the broadcast id "double-opt-in" is taken by a broadcast',
			HINT = 'Double opt-in sends its confirmations as the broadcast "double-opt-in"; rename that broadcast''s id.';
	END IF;
	/*
	 * Changed only when something differs: the row is the senders' too.  A
	 * paused opt-in broadcast stays paused (its confirmations wait for
	 * resume_broadcast); a cancelled one takes confirmations again.
	 */
	IF NOT (p_list_id = ANY (b.lists)) OR b.integration_id <> integ OR b.template_id <> tpl
	   OR b.status NOT IN ('processing', 'paused') THEN
		UPDATE broadcast.broadcasts x
		   SET lists = CASE WHEN p_list_id = ANY (x.lists) THEN x.lists ELSE x.lists || p_list_id END,
			   integration_id = integ, template_id = tpl,
			   status = CASE WHEN x.status = 'paused' THEN 'paused' ELSE 'processing' END,
			   updated_at = now()
		 WHERE x.workspace_id = p_workspace_id AND x.broadcast_id = 'double-opt-in';
	END IF;
	INSERT INTO broadcast.broadcast_variations AS v (workspace_id, broadcast_id, variation, template_id, version)
	VALUES (p_workspace_id, 'double-opt-in', 0, tpl, ver)
	ON CONFLICT (workspace_id, broadcast_id, variation) DO UPDATE
		SET template_id = EXCLUDED.template_id, version = EXCLUDED.version
		WHERE (v.template_id, v.version) IS DISTINCT FROM (EXCLUDED.template_id, EXCLUDED.version);
	RETURN integ;
END
$$;
REVOKE ALL ON FUNCTION broadcast._optin_broadcast(text, text) FROM PUBLIC;

/*
 * 1.0's subscribe with two more parameters.  double_opt_in: members not
 * active yet become 'pending' and are sent a confirmation (not members
 * already active; not more than one every 10 minutes per list; never to a
 * suppressed address); source_ip: where the subscription was asked for,
 * kept in the consent record.
 */
DROP FUNCTION broadcast.subscribe(text, text, text[], text);
CREATE FUNCTION broadcast.subscribe(
	workspace_id text,
	list_id text,
	emails text[],
	status text DEFAULT 'active',
	double_opt_in boolean DEFAULT false,
	source_ip inet DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad text;
	n bigint;
	integ text;
	queued bigint;
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
	IF double_opt_in IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'double_opt_in must not be NULL';
	END IF;
	SELECT e INTO bad FROM unnest(emails) e WHERE e IS NULL OR NOT broadcast.is_valid_email(e) LIMIT 1;
	IF FOUND THEN
		PERFORM broadcast._check_email(bad);
	END IF;

	IF NOT double_opt_in THEN
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
		IF source_ip IS NOT NULL AND subscribe.status = 'active' THEN
			INSERT INTO broadcast.consents AS c (workspace_id, email, list_id, method, requested_at, request_ip,
												 confirmed_at)
			SELECT DISTINCT subscribe.workspace_id, lower(e), subscribe.list_id, 'single', now(), source_ip, now()
			  FROM unnest(emails) e
			ON CONFLICT ON CONSTRAINT consents_pkey DO UPDATE
				SET method = 'single', requested_at = now(), request_ip = EXCLUDED.request_ip, message_id = NULL,
					confirmed_at = now(), confirm_ip = NULL;
		END IF;
		RETURN n;
	END IF;

	integ := broadcast._optin_broadcast(subscribe.workspace_id, subscribe.list_id);
	INSERT INTO broadcast.contacts (workspace_id, email)
	SELECT DISTINCT subscribe.workspace_id, lower(e) FROM unnest(emails) e
	ON CONFLICT DO NOTHING;

	/*
	 * Active members stay active; the others wait for their confirmation.
	 * One confirmation in the queue per address: a second list's request
	 * joins the one queued (confirming it confirms both).
	 */
	WITH m AS (
		INSERT INTO broadcast.list_members AS m (workspace_id, list_id, email, status)
		SELECT DISTINCT subscribe.workspace_id, subscribe.list_id, lower(e), 'pending'
		  FROM unnest(emails) e
		ON CONFLICT ON CONSTRAINT list_members_pkey DO UPDATE
			SET status = 'pending', updated_at = now()
			WHERE m.status <> 'active'
		RETURNING m.email
	), q AS (
		INSERT INTO broadcast.email_queue (workspace_id, broadcast_id, email, integration_id, list_id,
										   variation, message_id)
		SELECT subscribe.workspace_id, 'double-opt-in', m.email, integ, subscribe.list_id, 0,
			   broadcast._uuid_v7()
		  FROM m
		 WHERE NOT EXISTS (SELECT 1 FROM broadcast.suppressions s
							WHERE s.workspace_id = subscribe.workspace_id AND s.email = m.email)
		   /* not again within 10 minutes: subscribe() is no way to flood an inbox */
		   AND NOT EXISTS (SELECT 1 FROM broadcast.consents c
							WHERE c.workspace_id = subscribe.workspace_id AND c.email = m.email
							  AND c.list_id = subscribe.list_id AND c.method = 'double'
							  AND c.confirmed_at IS NULL AND c.requested_at > now() - interval '10 minutes')
		ON CONFLICT DO NOTHING
		RETURNING email_queue.email, email_queue.message_id
	), c AS (
		INSERT INTO broadcast.consents AS c (workspace_id, email, list_id, method, requested_at, request_ip,
											 message_id)
		SELECT subscribe.workspace_id, m.email, subscribe.list_id, 'double', now(), source_ip,
			   coalesce(q.message_id, eq.message_id)
		  FROM m
		  LEFT JOIN q ON q.email = m.email
		  LEFT JOIN broadcast.email_queue eq
				 ON eq.workspace_id = subscribe.workspace_id AND eq.broadcast_id = 'double-opt-in'
				AND eq.email = m.email
		 WHERE coalesce(q.message_id, eq.message_id) IS NOT NULL
		ON CONFLICT ON CONSTRAINT consents_pkey DO UPDATE
			SET method = 'double', requested_at = now(), request_ip = EXCLUDED.request_ip,
				message_id = EXCLUDED.message_id, confirmed_at = NULL, confirm_ip = NULL
			WHERE c.message_id IS DISTINCT FROM EXCLUDED.message_id
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM q) INTO n, queued;
	IF queued > 0 THEN
		PERFORM broadcast._wake_senders();
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION broadcast.subscribe(text, text, text[], text, boolean, inet) IS
	'Adds contacts to a list; with double_opt_in, as pending members sent a confirmation link';

/* the consent rows a confirmation token names, after checking it; raises 22023 */
CREATE FUNCTION broadcast._confirm_token(token text, OUT workspace_id text, OUT email text,
										 OUT list_id text, OUT message_id uuid, OUT page jsonb,
										 OUT expires interval)
RETURNS record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	secret bytea;
	o jsonb;
BEGIN
	IF token IS NULL OR token = '' OR length(token) > 8192 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid confirmation token';
	END IF;
	BEGIN
		t := broadcast._unsub_token_parse(token);
	EXCEPTION WHEN invalid_parameter_value THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid confirmation token',
			DETAIL = 'The token is malformed.';
	END;
	SELECT s.unsubscribe_secret, w.settings->'double_opt_in' INTO secret, o
	  FROM broadcast.workspace_secrets s JOIN broadcast.workspaces w USING (workspace_id)
	 WHERE s.workspace_id = t.workspace_id;
	IF secret IS NULL OR NOT broadcast._signed_token_verify('confirm', token, secret)
	   OR t.message_id !~ '^[0-9a-f-]{36}$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid confirmation token',
			DETAIL = 'The token was altered, truncated or not issued by this server.';
	END IF;
	workspace_id := t.workspace_id;
	email := t.email;
	list_id := t.list_id;
	message_id := t.message_id::uuid;
	page := coalesce(o->'page', '{}');
	expires := make_interval(hours => coalesce((o->>'expires_hours')::integer, 72));
END
$$;
REVOKE ALL ON FUNCTION broadcast._confirm_token(text) FROM PUBLIC;

/*
 * The texts of the edge's confirmation page for a token (the setting
 * double_opt_in.page, '{}' when unset), after checking the token and that
 * its request is still open.  Changes nothing: a GET only shows this.
 */
CREATE FUNCTION broadcast.confirm_page(token text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
BEGIN
	t := broadcast._confirm_token(token);
	IF NOT EXISTS (SELECT 1 FROM broadcast.consents c
					WHERE c.workspace_id = t.workspace_id AND c.email = t.email AND c.message_id = t.message_id
					  AND (c.confirmed_at IS NOT NULL OR c.requested_at > now() - t.expires)) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'confirmation link expired',
			DETAIL = 'The link is too old, or a newer confirmation was sent since.',
			HINT = 'Subscribe again to get a new link.';
	END IF;
	RETURN t.page;
END
$$;
REVOKE ALL ON FUNCTION broadcast.confirm_page(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.confirm_page(text) TO broadcast_edge, broadcast_admin;
COMMENT ON FUNCTION broadcast.confirm_page(text) IS
	'The texts of the double opt-in confirmation page for a /c/ token; changes nothing';

/*
 * Confirms the subscriptions a /c/ token names (every list whose request
 * the message carried) and records when and from where; the members
 * become 'active' unless they left since.  A second call changes nothing.
 * Returns the lists confirmed.
 */
CREATE FUNCTION broadcast.confirm_subscription(token text, client_ip text DEFAULT NULL)
RETURNS text[]
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	lists text[];
BEGIN
	t := broadcast._confirm_token(token);
	WITH c AS (
		UPDATE broadcast.consents c
		   SET confirmed_at = now(), confirm_ip = broadcast._inet_or_null(client_ip)
		 WHERE c.workspace_id = t.workspace_id AND c.email = t.email AND c.message_id = t.message_id
		   AND c.confirmed_at IS NULL AND c.requested_at > now() - t.expires
		RETURNING c.list_id
	), m AS (
		UPDATE broadcast.list_members lm SET status = 'active', updated_at = now()
		  FROM c
		 WHERE lm.workspace_id = t.workspace_id AND lm.list_id = c.list_id AND lm.email = t.email
		   AND lm.status = 'pending'
		RETURNING 1
	)
	SELECT coalesce(array_agg(c.list_id ORDER BY c.list_id), '{}') INTO lists FROM c;
	IF cardinality(lists) = 0 THEN
		SELECT coalesce(array_agg(c.list_id ORDER BY c.list_id), '{}') INTO lists
		  FROM broadcast.consents c
		 WHERE c.workspace_id = t.workspace_id AND c.email = t.email AND c.message_id = t.message_id
		   AND c.confirmed_at IS NOT NULL;
		IF cardinality(lists) = 0 THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'confirmation link expired',
				DETAIL = 'The link is too old, or a newer confirmation was sent since.',
				HINT = 'Subscribe again to get a new link.';
		END IF;
	END IF;
	RETURN lists;
END
$$;
REVOKE ALL ON FUNCTION broadcast.confirm_subscription(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.confirm_subscription(text, text) TO broadcast_edge, broadcast_admin;
COMMENT ON FUNCTION broadcast.confirm_subscription(text, text) IS
	'Confirms a double opt-in from its /c/ token: the members become active and the consent is recorded';

/* a contact's consent records, for an export or a data subject's request */
CREATE FUNCTION broadcast.export_consents(workspace_id text, email text)
RETURNS TABLE (list_id text, list_name text, method text, requested_at timestamptz, request_ip inet,
			   confirmed_at timestamptz, confirm_ip inet, member_status text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize(export_consents.workspace_id);
	RETURN QUERY
	SELECT c.list_id, l.name, c.method, c.requested_at, c.request_ip, c.confirmed_at, c.confirm_ip, m.status
	  FROM broadcast.consents c
	  JOIN broadcast.lists l ON l.workspace_id = c.workspace_id AND l.list_id = c.list_id
	  LEFT JOIN broadcast.list_members m
			 ON m.workspace_id = c.workspace_id AND m.list_id = c.list_id AND m.email = c.email
	 WHERE c.workspace_id = export_consents.workspace_id AND c.email = lower(export_consents.email)
	 ORDER BY c.list_id;
END
$$;
REVOKE ALL ON FUNCTION broadcast.export_consents(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.export_consents(text, text) TO broadcast_user, broadcast_admin;
COMMENT ON FUNCTION broadcast.export_consents(text, text) IS
	'A contact''s subscription consents: when and from which address asked for and confirmed, per list';

/* ------------------------------------------------------------------------
 * Tracking
 * ------------------------------------------------------------------------ */

/* the broadcast's switch: true, false, or NULL for the workspace's setting; before it sends */
CREATE FUNCTION broadcast.set_broadcast_tracking(workspace_id text, broadcast_id text, enabled boolean)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	b broadcast.broadcasts;
BEGIN
	PERFORM broadcast._authorize(set_broadcast_tracking.workspace_id);
	b := broadcast._get_broadcast(set_broadcast_tracking.workspace_id, set_broadcast_tracking.broadcast_id);
	IF b.status NOT IN ('draft', 'scheduled') THEN
		PERFORM broadcast._state_error(b, 'change the tracking of', 'draft or scheduled');
	END IF;
	UPDATE broadcast.broadcasts x SET tracking = enabled, updated_at = now()
	 WHERE x.workspace_id = b.workspace_id AND x.broadcast_id = b.broadcast_id;
END
$$;
REVOKE ALL ON FUNCTION broadcast.set_broadcast_tracking(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.set_broadcast_tracking(text, text, boolean) TO broadcast_user, broadcast_admin;
COMMENT ON FUNCTION broadcast.set_broadcast_tracking(text, text, boolean) IS
	'Turns first-party tracking on or off for a broadcast (NULL: as the workspace''s tracking setting)';

/*
 * Why an open or click looks like a machine's, or NULL: no or a known
 * automatic user agent, Apple Mail Privacy Protection's fetch of every
 * image, a click within 2 seconds of sending, or several links of one
 * message clicked within 2 seconds (a scanner following every link).
 */
CREATE FUNCTION broadcast._machine_reason(event text, user_agent text, client_ip inet,
										  sent_at timestamptz, other_links_now bigint)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE
		WHEN user_agent IS NULL OR btrim(user_agent) = '' THEN 'no user agent'
		WHEN user_agent ~* '(bot|crawl|spider|slurp|preview|scanner|scan|barracuda|mimecast|proofpoint|symantec|messagelabs|trendmicro|forcepoint|fortinet|sophos|safelinks|urldefense|python|curl|wget|go-http-client|java/|okhttp|libwww|httpclient|headless|phantomjs)'
			THEN 'automatic user agent'
		WHEN event = 'opened' AND (btrim(user_agent) = 'Mozilla/5.0' OR client_ip << '17.0.0.0/8'::inet)
			THEN 'Apple Mail Privacy Protection'
		WHEN event = 'clicked' AND sent_at IS NOT NULL AND now() - sent_at < interval '2 seconds'
			THEN 'clicked within 2 seconds of sending'
		WHEN event = 'clicked' AND other_links_now >= 2 THEN 'several links clicked at once'
	END
$$;

/*
 * The edge's /t/ routes: checks a tracking token, records the open or the
 * click (the history through _apply_events, as a provider's event; the
 * per-link row; the machine flags) and returns the link's target, NULL for
 * the pixel.  The target is the one signed in the token: no open redirect.
 * A message unknown here (its history row gone) is redirected all the same,
 * with nothing recorded; so is any request with record false (HEAD).
 */
CREATE FUNCTION broadcast.track(token text, user_agent text DEFAULT NULL, client_ip text DEFAULT NULL,
								record boolean DEFAULT true,
								OUT url text, OUT recorded boolean, OUT machine_reason text)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	secret bytea;
	ev text;
	idx integer;
	h record;
	others bigint := 0;
	ua text := left(user_agent, 500);
	is_machine boolean;
BEGIN
	recorded := false;
	IF token IS NULL OR token = '' OR length(token) > 8192 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid tracking token';
	END IF;
	BEGIN
		t := broadcast._unsub_token_parse(token);
	EXCEPTION WHEN invalid_parameter_value THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid tracking token',
			DETAIL = 'The token is malformed.';
	END;
	SELECT s.unsubscribe_secret INTO secret FROM broadcast.workspace_secrets s
	 WHERE s.workspace_id = t.workspace_id;
	IF secret IS NULL OR NOT broadcast._signed_token_verify('track', token, secret)
	   OR t.message_id !~ '^[0-9a-f-]{36}$' OR NOT (t.list_id = 'o' OR t.list_id ~ '^[0-9]{1,4}$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid tracking token',
			DETAIL = 'The token was altered, truncated or not issued by this server.';
	END IF;
	IF t.list_id = 'o' THEN
		ev := 'opened';
		idx := -1;
	ELSE
		ev := 'clicked';
		idx := t.list_id::integer;
		url := t.email;
	END IF;

	SELECT x.broadcast_id, x.integration_id, coalesce(x.delivered_at, x.sent_at) AS sent_at INTO h
	  FROM broadcast.message_history x
	 WHERE x.workspace_id = t.workspace_id AND x.message_id = t.message_id::uuid;
	IF NOT FOUND OR h.integration_id IS NULL OR record IS NOT TRUE THEN
		RETURN;
	END IF;
	IF ev = 'clicked' THEN
		SELECT count(DISTINCT e.link_index) INTO others FROM broadcast.tracked_events e
		 WHERE e.workspace_id = t.workspace_id AND e.message_id = t.message_id::uuid
		   AND e.event = 'clicked' AND e.link_index <> idx AND e.last_at > now() - interval '2 seconds';
	END IF;
	machine_reason := broadcast._machine_reason(ev, ua, broadcast._inet_or_null(client_ip), h.sent_at, others);
	is_machine := machine_reason IS NOT NULL;

	INSERT INTO broadcast.tracked_events AS e (workspace_id, message_id, broadcast_id, event, link_index, url,
											   machine, machine_reason)
	VALUES (t.workspace_id, t.message_id::uuid, h.broadcast_id, ev, idx, url, is_machine, machine_reason)
	ON CONFLICT ON CONSTRAINT tracked_events_pkey DO UPDATE
		SET hits = least(e.hits, 1000000000) + 1, last_at = now();

	/* the providers' path: idempotent, the earliest time wins */
	PERFORM broadcast._apply_events(t.workspace_id, h.integration_id,
		ARRAY[ROW(t.message_id::uuid, NULL, NULL, ev, now(), NULL, url)::broadcast.delivery_event]);

	IF ev = 'opened' THEN
		UPDATE broadcast.message_history x
		   SET open_machine = CASE WHEN is_machine THEN coalesce(x.open_machine, true) ELSE false END
		 WHERE x.workspace_id = t.workspace_id AND x.message_id = t.message_id::uuid
		   AND x.open_machine IS DISTINCT FROM (CASE WHEN is_machine THEN coalesce(x.open_machine, true) ELSE false END);
	ELSE
		UPDATE broadcast.message_history x
		   SET click_machine = CASE WHEN is_machine THEN coalesce(x.click_machine, true) ELSE false END
		 WHERE x.workspace_id = t.workspace_id AND x.message_id = t.message_id::uuid
		   AND x.click_machine IS DISTINCT FROM (CASE WHEN is_machine THEN coalesce(x.click_machine, true) ELSE false END);
	END IF;
	recorded := true;
END
$$;
REVOKE ALL ON FUNCTION broadcast.track(text, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.track(text, text, text, boolean) TO broadcast_edge, broadcast_admin;
COMMENT ON FUNCTION broadcast.track(text, text, text, boolean) IS
	'Records a first-party open or click from its /t/ token and returns the link''s signed target';

/* per-link clicks of a broadcast: all and human, hits and distinct messages */
CREATE FUNCTION broadcast.link_stats(workspace_id text, broadcast_id text)
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

/* opens and clicks of a broadcast per template: all, and without those flagged as machines' */
CREATE FUNCTION broadcast.engagement_stats(workspace_id text, broadcast_id text)
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
	  FROM broadcast.message_history h
	 WHERE h.workspace_id = engagement_stats.workspace_id AND h.broadcast_id = engagement_stats.broadcast_id
	 GROUP BY GROUPING SETS ((h.template_id), ())
	 ORDER BY h.template_id NULLS FIRST;
END
$$;
REVOKE ALL ON FUNCTION broadcast.engagement_stats(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.engagement_stats(text, text) TO broadcast_user, broadcast_admin;
COMMENT ON FUNCTION broadcast.engagement_stats(text, text) IS
	'Opens and clicks of a broadcast per template: all, human, and flagged as machines''';

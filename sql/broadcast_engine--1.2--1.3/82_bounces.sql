/*
 * 1.3, bounces for SMTP senders (issue 15, "Bounces for SMTP senders").
 *
 *	- SMTP integrations take bounce_domain and bounce_local: the sender then
 *	  uses the VERP return path <bounce_local>+<token>@<bounce_domain>, the
 *	  token naming the message, signed with the workspace's secret
 *	  (src/bounce.c, src/provider_smtp.c).  Without bounce_domain nothing
 *	  changes.
 *	- broadcast.record_bounce_message(workspace_id, raw_message) reads a
 *	  returned message (RFC 3464 DSN, RFC 5965 ARF, common text bounces) as an
 *	  MTA's pipe or a mailbox fetcher delivers it, finds the message by its
 *	  VERP token or else its Message-ID, and feeds the event path of
 *	  record_events (_apply_events): hard and soft bounces, complaints,
 *	  suppression and the soft-bounce threshold.  A message it cannot
 *	  attribute is counted in broadcast.bounce_intake, not an error.
 *
 * Replaces broadcast._check_integration_config (from 40_events_input.sql).
 */

/* ------------------------------------------------------------------------
 * Integration settings: the VERP keys of smtp
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION broadcast._check_integration_config(provider text, config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
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
			allowed := ARRAY['host', 'port', 'tls', 'username', 'ehlo_name', 'ca_file',
							 'bounce_domain', 'bounce_local'];
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
			allowed := ARRAY['endpoint', 'region', 'access_key_id', 'configuration_set', 'topic_arn'];
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
	/* the SNS topic SES publishes this integration's events to: webhooks from others are refused */
	IF provider = 'ses' AND config ? 'topic_arn'
	   AND (jsonb_typeof(config->'topic_arn') <> 'string'
			OR config->>'topic_arn' !~ '^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:[A-Za-z0-9_-]{1,255}(\.fifo)?$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid SNS topic ARN %s', config->'topic_arn'),
			HINT = 'Use the ARN of the topic the configuration set''s event destination publishes to, such as "arn:aws:sns:eu-west-1:123456789012:ses-events".';
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
		/* VERP: <bounce_local>+<42-character token>@<bounce_domain> fits a 64-byte local part */
		IF config ? 'bounce_domain'
		   AND (jsonb_typeof(config->'bounce_domain') <> 'string'
				OR length(config->>'bounce_domain') > 200
				OR config->>'bounce_domain' !~ '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid bounce domain %s', config->'bounce_domain'),
				HINT = 'Use a domain name whose mail reaches the pipe that calls broadcast.record_bounce_message(), such as "bounces.example.com".';
		END IF;
		IF config ? 'bounce_local' AND NOT config ? 'bounce_domain' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'bounce_local given without bounce_domain',
				HINT = 'VERP return paths need both; bounce_local defaults to "bounces".';
		END IF;
		IF config ? 'bounce_local'
		   AND (jsonb_typeof(config->'bounce_local') <> 'string'
				OR config->>'bounce_local' !~ '^[a-z0-9]([a-z0-9._-]{0,18}[a-z0-9])?$'
				OR config->>'bounce_local' ~ '\.\.') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = format('invalid bounce local part %s', config->'bounce_local'),
				DETAIL = 'It must be 1 to 20 lower-case letters, digits, dots, hyphens or underscores, starting and ending with a letter or digit; the token follows a "+".';
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

/* ------------------------------------------------------------------------
 * The parser and the token check (src/bounce_sql.c)
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast._bounce_parse(raw bytea)
RETURNS jsonb
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_bounce_parse';
COMMENT ON FUNCTION broadcast._bounce_parse(bytea) IS
	'What a returned message reports: kind, class, recipients, VERP tokens, the returned Message-ID';
REVOKE ALL ON FUNCTION broadcast._bounce_parse(bytea) FROM PUBLIC;

CREATE FUNCTION broadcast._verp_message_id(workspace_id text, token text, secret bytea)
RETURNS uuid
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'be_verp_message_id';
COMMENT ON FUNCTION broadcast._verp_message_id(text, text, bytea) IS
	'The message id a VERP token names, when its signature is the workspace''s; else NULL';
REVOKE ALL ON FUNCTION broadcast._verp_message_id(text, text, bytea) FROM PUBLIC;

/* ------------------------------------------------------------------------
 * Counters
 * ------------------------------------------------------------------------ */

/* returned messages per workspace, and those that could not be attributed */
CREATE TABLE broadcast.bounce_intake (
	workspace_id		text PRIMARY KEY REFERENCES broadcast.workspaces ON DELETE CASCADE,
	received			bigint NOT NULL DEFAULT 0 CHECK (received >= 0),
	attributed			bigint NOT NULL DEFAULT 0 CHECK (attributed >= 0),
	unattributed		bigint NOT NULL DEFAULT 0 CHECK (unattributed >= 0),
	last_received_at	timestamptz,
	last_unattributed_at timestamptz,
	last_unattributed_reason text
);
COMMENT ON TABLE broadcast.bounce_intake IS
	'Returned messages read by record_bounce_message: how many, and how many named no message of the workspace';
ALTER TABLE broadcast.bounce_intake ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON broadcast.bounce_intake
	USING (broadcast.has_workspace_access(workspace_id));
GRANT SELECT ON broadcast.bounce_intake TO broadcast_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON broadcast.bounce_intake TO broadcast_admin;
SELECT pg_catalog.pg_extension_config_dump('broadcast.bounce_intake', '');

/* ------------------------------------------------------------------------
 * record_bounce_message
 * ------------------------------------------------------------------------ */

CREATE FUNCTION broadcast.record_bounce_message(
	workspace_id text,
	raw_message bytea,
	OUT kind text, OUT bounce_class text, OUT message_id uuid, OUT email text,
	OUT attributed_by text, OUT status text, OUT applied integer, OUT pending integer,
	OUT suppressed integer)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ws text := record_bounce_message.workspace_id;
	rep jsonb;
	rcpt jsonb;
	tok text;
	secret bytea;
	cand uuid;
	cand_email text;
	integ text;
	ev text;
	occurred timestamptz;
	why text;
	r record;
BEGIN
	PERFORM broadcast._authorize_webhook(ws);
	IF raw_message IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'raw_message must not be NULL';
	END IF;
	/* the parser's own bound (BOUNCE_INPUT_MAX in include/bounce.h) */
	IF octet_length(raw_message) > 2097152 THEN
		RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
			MESSAGE = format('returned message is too large (%s bytes)', octet_length(raw_message)),
			DETAIL = 'At most 2097152 bytes (2 MB) are read.',
			HINT = 'Have the MTA return only the headers of the original message (Postfix: bounce_size_limit), or pass the first 2 MB.';
	END IF;

	rep := broadcast._bounce_parse(raw_message);
	kind := rep->>'kind';
	bounce_class := rep->>'class';
	applied := 0; pending := 0; suppressed := 0;
	/* the first recipient the report acts on, else the first at all */
	SELECT x INTO rcpt FROM jsonb_array_elements(rep->'recipients') WITH ORDINALITY AS t(x, n)
	 ORDER BY (x->>'class' = 'none'), n LIMIT 1;
	email := nullif(rcpt->>'email', '');
	status := nullif(rcpt->>'status', '');

	/* 1. the VERP token: signed, so it names the message for certain */
	SELECT s.unsubscribe_secret INTO secret FROM broadcast.workspace_secrets s WHERE s.workspace_id = ws;
	FOR tok IN SELECT jsonb_array_elements_text(rep->'tokens') LOOP
		message_id := broadcast._verp_message_id(ws, tok, secret);
		IF message_id IS NOT NULL THEN
			attributed_by := 'verp';
			EXIT;
		END IF;
	END LOOP;

	/*
	 * 2. else our Message-ID, <message_id@sending domain>, in the returned
	 * headers: unsigned, so only a message of this workspace sent through
	 * SMTP (the HTTP providers' bounces come through their signed webhooks,
	 * docs/events.md) to the address the report names counts
	 */
	IF message_id IS NULL AND kind <> 'none' THEN
		cand := broadcast._uuid_or_null(split_part(rep->>'message_id', '@', 1));
		IF cand IS NOT NULL THEN
			SELECT h.message_id INTO message_id FROM broadcast.message_history h
			 WHERE h.workspace_id = ws AND h.message_id = cand AND h.provider = 'smtp'
			   AND (record_bounce_message.email IS NULL OR h.email = record_bounce_message.email);
			IF message_id IS NOT NULL THEN
				attributed_by := 'message-id';
			END IF;
		END IF;
	END IF;

	/*
	 * The integration it went through: its history row, or while a sender
	 * has not recorded it yet, its queue row.  The queue has no index on
	 * message_id: it is probed by its key, once per broadcast that may be
	 * sending, with the address the report names.
	 */
	IF message_id IS NOT NULL THEN
		SELECT h.integration_id, h.email INTO integ, cand_email FROM broadcast.message_history h
		 WHERE h.workspace_id = ws AND h.message_id = record_bounce_message.message_id;
		IF NOT FOUND AND email IS NOT NULL THEN
			SELECT q.integration_id, q.email INTO integ, cand_email
			  FROM broadcast.broadcasts b
			  JOIN broadcast.email_queue q
				ON q.workspace_id = b.workspace_id AND q.broadcast_id = b.broadcast_id
			   AND q.email = record_bounce_message.email
			 WHERE b.workspace_id = ws
			   AND b.status IN ('processing', 'testing', 'test_completed', 'winner_selected', 'paused')
			   AND q.message_id = record_bounce_message.message_id
			 LIMIT 1;
		END IF;
		email := coalesce(cand_email, email);
	END IF;

	IF kind = 'none' THEN
		why := 'not a delivery status notification, feedback report or known bounce format';
	ELSIF message_id IS NULL THEN
		why := 'no valid VERP token and no Message-ID of a message this workspace sent by SMTP';
	ELSIF integ IS NULL THEN
		why := 'the message is neither in the history nor in the queue';
	END IF;

	INSERT INTO broadcast.bounce_intake AS b
		(workspace_id, received, attributed, unattributed, last_received_at, last_unattributed_at,
		 last_unattributed_reason)
	VALUES (ws, 1, CASE WHEN why IS NULL THEN 1 ELSE 0 END, CASE WHEN why IS NULL THEN 0 ELSE 1 END,
			now(), CASE WHEN why IS NOT NULL THEN now() END, why)
	ON CONFLICT ON CONSTRAINT bounce_intake_pkey DO UPDATE
	   SET received = b.received + 1,
		   attributed = b.attributed + EXCLUDED.attributed,
		   unattributed = b.unattributed + EXCLUDED.unattributed,
		   last_received_at = EXCLUDED.last_received_at,
		   last_unattributed_at = coalesce(EXCLUDED.last_unattributed_at, b.last_unattributed_at),
		   last_unattributed_reason = coalesce(EXCLUDED.last_unattributed_reason, b.last_unattributed_reason);
	IF why IS NOT NULL THEN
		attributed_by := NULL;
		IF kind = 'none' THEN
			message_id := NULL;
		END IF;
		RETURN;
	END IF;

	/*
	 * 3. the event path of record_events.  The report's own Date is the
	 * event's time, so a message fed twice is the same event twice.
	 */
	ev := CASE bounce_class WHEN 'hard' THEN 'bounced' WHEN 'soft' THEN 'bounced'
						   WHEN 'complaint' THEN 'complained' ELSE 'ignored' END;
	BEGIN
		occurred := least(nullif(rep->>'date', '')::timestamptz, now());
	EXCEPTION WHEN OTHERS THEN
		occurred := NULL;
	END;
	r := broadcast._apply_events(ws, integ, ARRAY[ROW(
			message_id, NULL, email, ev, coalesce(occurred, now()),
			CASE WHEN ev = 'bounced' THEN bounce_class END,
			left(concat_ws(' ', status, nullif(rcpt->>'diagnostic', '')), 500))::broadcast.delivery_event]);
	applied := r.applied; pending := r.pending; suppressed := r.suppressed;
END
$$;
COMMENT ON FUNCTION broadcast.record_bounce_message(text, bytea) IS
	'Reads a returned message (DSN, ARF or text bounce) and applies it like record_events';
REVOKE ALL ON FUNCTION broadcast.record_bounce_message(text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION broadcast.record_bounce_message(text, bytea)
	TO broadcast_webhook, broadcast_user, broadcast_admin;

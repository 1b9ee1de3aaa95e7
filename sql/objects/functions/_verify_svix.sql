/*
 * Svix (Resend): base64 HMAC-SHA256 of "svix-id.svix-timestamp.body" under
 * the secret after "whsec_", in the svix-signature header: a space-separated
 * list of "v1,<base64>", any of which may match (secret rotation).
 */

CREATE OR REPLACE FUNCTION broadcast._verify_svix(body text, headers jsonb, secret text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
	h jsonb;
	msg_id text;
	ts text;
	sigs text;
	expected bytea;
	ok boolean := false;
	s text;
BEGIN
	SELECT coalesce(jsonb_object_agg(lower(k), v), '{}') INTO h
	  FROM jsonb_each_text(CASE jsonb_typeof(headers) WHEN 'object' THEN headers ELSE '{}' END) AS x(k, v);
	msg_id := coalesce(h->>'svix-id', h->>'webhook-id');
	ts := coalesce(h->>'svix-timestamp', h->>'webhook-timestamp');
	sigs := coalesce(h->>'svix-signature', h->>'webhook-signature');
	IF msg_id IS NULL OR ts IS NULL OR sigs IS NULL THEN
		PERFORM broadcast._signature_error('resend', 'The svix-id, svix-timestamp and svix-signature headers are required.');
	END IF;
	expected := broadcast._hmac_sha256(decode(substr(secret, 7), 'base64'),
									   convert_to(msg_id || '.' || ts || '.' || body, 'UTF8'));
	FOREACH s IN ARRAY regexp_split_to_array(btrim(sigs), '\s+') LOOP
		IF s ~ '^v1,[A-Za-z0-9+/]+={0,2}$' AND length(s) = 47
		   AND broadcast._ct_equal(expected, decode(substr(s, 4), 'base64')) THEN
			ok := true;
		END IF;
	END LOOP;
	IF NOT ok THEN
		PERFORM broadcast._signature_error('resend', 'No v1 signature in svix-signature matches the body.');
	END IF;
	PERFORM broadcast._check_signature_age('resend', ts);
END
$_$;

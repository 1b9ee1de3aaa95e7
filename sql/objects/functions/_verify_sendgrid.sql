/*
 * SendGrid: ECDSA P-256 with SHA-256 over timestamp || raw body; the
 * base64 DER signature in X-Twilio-Email-Event-Webhook-Signature, the
 * timestamp in X-Twilio-Email-Event-Webhook-Timestamp.
 */
CREATE OR REPLACE FUNCTION broadcast._verify_sendgrid(body text, headers jsonb, public_key text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h jsonb;
	sig text;
	ts text;
BEGIN
	SELECT coalesce(jsonb_object_agg(lower(k), v), '{}') INTO h
	  FROM jsonb_each_text(CASE jsonb_typeof(headers) WHEN 'object' THEN headers ELSE '{}' END) AS x(k, v);
	sig := h->>'x-twilio-email-event-webhook-signature';
	ts := h->>'x-twilio-email-event-webhook-timestamp';
	IF sig IS NULL OR ts IS NULL THEN
		PERFORM broadcast._signature_error('sendgrid',
			'The X-Twilio-Email-Event-Webhook-Signature and X-Twilio-Email-Event-Webhook-Timestamp headers are required.');
	END IF;
	IF sig !~ '^[A-Za-z0-9+/]+={0,2}$' OR length(sig) % 4 <> 0 OR length(sig) > 200 THEN
		PERFORM broadcast._signature_error('sendgrid', 'The signature is not base64.');
	END IF;
	IF NOT broadcast._ecdsa_verify(public_key, convert_to(ts || body, 'UTF8'), decode(sig, 'base64')) THEN
		PERFORM broadcast._signature_error('sendgrid', 'The signature does not match the body.');
	END IF;
	PERFORM broadcast._check_signature_age('sendgrid', ts);
END
$$;

REVOKE ALL ON FUNCTION broadcast._verify_sendgrid(text, jsonb, text) FROM PUBLIC;

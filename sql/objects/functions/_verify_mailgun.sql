/* Mailgun: hex HMAC-SHA256 of timestamp || token under the webhook signing key, in the body */

CREATE OR REPLACE FUNCTION broadcast._verify_mailgun(payload jsonb, signing_key text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
	sig jsonb := payload->'signature';
BEGIN
	IF jsonb_typeof(sig) IS DISTINCT FROM 'object' OR sig->>'signature' IS NULL
	   OR sig->>'token' IS NULL OR sig->>'timestamp' IS NULL THEN
		PERFORM broadcast._signature_error('mailgun', 'The payload has no "signature" object with timestamp, token and signature.');
	END IF;
	IF (sig->>'signature') !~ '^[0-9a-fA-F]{64}$'
	   OR NOT broadcast._ct_equal(
			broadcast._hmac_sha256(convert_to(signing_key, 'UTF8'),
								   convert_to((sig->>'timestamp') || (sig->>'token'), 'UTF8')),
			decode(sig->>'signature', 'hex')) THEN
		PERFORM broadcast._signature_error('mailgun', 'The signature does not match the payload.');
	END IF;
	PERFORM broadcast._check_signature_age('mailgun', sig->>'timestamp');
END
$_$;

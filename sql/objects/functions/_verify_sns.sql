/*
 * Amazon SNS: RSA over the message's canonical string (name\nvalue\n for
 * the signed fields in order), SHA1 for SignatureVersion 1 and SHA256 for
 * 2, checked with the signing certificate stored with the integration.
 */

CREATE OR REPLACE FUNCTION broadcast._verify_sns(payload jsonb, cert_pem text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
	fields text[];
	f text;
	canonical text := '';
	sig bytea;
BEGIN
	IF payload->>'Signature' IS NULL OR payload->>'SignatureVersion' IS NULL THEN
		PERFORM broadcast._signature_error('ses', 'The SNS message has no Signature.');
	END IF;
	IF payload->>'SignatureVersion' NOT IN ('1', '2') THEN
		PERFORM broadcast._signature_error('ses', format('SignatureVersion %s is not supported.',
														  broadcast._show(payload->>'SignatureVersion')));
	END IF;
	IF payload->>'Type' = 'Notification' THEN
		fields := ARRAY['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'];
	ELSE
		fields := ARRAY['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
	END IF;
	FOREACH f IN ARRAY fields LOOP
		IF payload->>f IS NOT NULL THEN
			canonical := canonical || f || E'\n' || (payload->>f) || E'\n';
		ELSIF f <> 'Subject' THEN
			PERFORM broadcast._signature_error('ses', format('The SNS message has no %s.', f));
		END IF;
	END LOOP;
	IF (payload->>'Signature') !~ '^[A-Za-z0-9+/]+={0,2}$' THEN
		PERFORM broadcast._signature_error('ses', 'The Signature is not base64.');
	END IF;
	sig := decode(payload->>'Signature', 'base64');
	IF NOT broadcast._rsa_verify(cert_pem, convert_to(canonical, 'UTF8'), sig,
								 CASE payload->>'SignatureVersion' WHEN '1' THEN 'sha1' ELSE 'sha256' END) THEN
		PERFORM broadcast._signature_error('ses', 'The Signature does not match the message.');
	END IF;
END
$_$;

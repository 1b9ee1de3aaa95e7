/*
 * The config of Amazon SES: the region, the access key id, and the SNS
 * topic its events arrive from (docs/providers/ses.md).  Called by
 * _check_integration_config(); the keys every provider shares are checked
 * by _check_config_keys().
 */
CREATE OR REPLACE FUNCTION broadcast._check_config_ses(config jsonb, secret text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_config_keys('ses', config,
									  ARRAY['region', 'access_key_id'],
									  ARRAY['endpoint', 'region', 'access_key_id', 'configuration_set', 'topic_arn']);
	IF config->>'region' !~ '^[a-z]{2}(-[a-z]+)+-[0-9]+$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid AWS region %s', quote_literal(config->>'region')),
			HINT = 'Use a region code such as "eu-west-1".';
	END IF;
	/* the SNS topic SES publishes this integration's events to: webhooks from others are refused */
	IF config ? 'topic_arn'
	   AND (jsonb_typeof(config->'topic_arn') <> 'string'
			OR config->>'topic_arn' !~ '^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:[A-Za-z0-9_-]{1,255}(\.fifo)?$') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('invalid SNS topic ARN %s', config->'topic_arn'),
			HINT = 'Use the ARN of the topic the configuration set''s event destination publishes to, such as "arn:aws:sns:eu-west-1:123456789012:ses-events".';
	END IF;
END
$$;

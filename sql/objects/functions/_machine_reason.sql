/*
 * Why an open or click looks like a machine's, or NULL: no or a known
 * automatic user agent, Apple Mail Privacy Protection's fetch of every
 * image, a click within 2 seconds of sending, or several links of one
 * message clicked within 2 seconds (a scanner following every link).
 */
CREATE OR REPLACE FUNCTION broadcast._machine_reason(event text, user_agent text, client_ip inet,
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

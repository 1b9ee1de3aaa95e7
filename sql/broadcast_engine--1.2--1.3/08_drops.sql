/*
 * 08_drops: functions whose result type changes in 1.3.  CREATE OR REPLACE
 * cannot change a function's result type, so they are dropped here, before
 * every function of sql/objects/functions/ is created again (parts
 * numbered below 10 run first).
 *
 * rate_limits(): a C function in 1.2; since 1.3 an SQL function over
 * _rate_buckets() with waiting_for and waiting_until (88_windows_caps.sql).
 */
DROP FUNCTION broadcast.rate_limits();

/*
 * _check_template_syntax(): create_template checks a template with its
 * snippets through _template_snippets() since 1.3; nothing calls it.
 */
DROP FUNCTION broadcast._check_template_syntax(text, text, text);

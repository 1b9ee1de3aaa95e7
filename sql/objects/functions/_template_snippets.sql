/*
 * Compiles a template with its workspace's snippets ({% render 'name' %}:
 * the html of the latest version of template "name") and returns the
 * versions used, {"name": version}; a syntax error or a missing snippet is
 * raised naming the field, line and column.  Called when a template is
 * saved and, to pin the snippets, when a broadcast is scheduled.
 */

CREATE OR REPLACE FUNCTION broadcast._template_snippets(workspace_id text, source text, field text) RETURNS jsonb
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'be_template_snippets';

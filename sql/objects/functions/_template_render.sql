CREATE OR REPLACE FUNCTION broadcast._template_render(source text, data jsonb) RETURNS text
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'be_template_render';

/* a workspace's template: its snippets resolve to the workspace's templates */

CREATE OR REPLACE FUNCTION broadcast._template_render(source text, data jsonb, workspace_id text) RETURNS text
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'be_template_render';

CREATE OR REPLACE FUNCTION broadcast._template_render(source text, data jsonb) RETURNS text
    LANGUAGE c STABLE
    AS '$libdir/broadcast_engine', 'be_template_render';

/*
 * 87_snippets: Liquid snippets ({% render %}, {% include %}), issue 14.
 *
 * A broadcast's variations pin the versions of the snippets their
 * template renders, as they pin the template's version, so that editing a
 * snippet does not change a scheduled broadcast.  The functions
 * (_template_snippets, create_template, _pin_versions, render_liquid)
 * live in sql/objects/functions/.
 */
ALTER TABLE broadcast.broadcast_variations
	ADD COLUMN snippets jsonb NOT NULL DEFAULT '{}'::jsonb;

/*
 * Tenants write their audience through the API only.
 *
 * Until 1.2 a workspace role held INSERT, UPDATE and DELETE on contacts,
 * lists and list_members (and INSERT on suppressions), row level security
 * keeping it to its own rows.  Those privileges also let it run
 * LOCK TABLE broadcast.contacts IN ACCESS EXCLUSIVE MODE, which froze the
 * scheduler and every sender for all workspaces, and SELECT ... FOR UPDATE
 * on any row it could see.  Now a tenant only reads tables; every write goes
 * through a SECURITY DEFINER function that checks the calling role first
 * (broadcast._authorize judges both current_user and the role after
 * SET ROLE, 30_caller.sql).  A tenant can still take ACCESS SHARE locks
 * (SELECT), which conflict with nothing the workers take.
 */
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
	ON broadcast.contacts, broadcast.lists, broadcast.list_members, broadcast.suppressions
	FROM broadcast_user;

/* the functions that wrote through the caller's privileges now write as the owner */
ALTER FUNCTION broadcast.upsert_contacts(text, jsonb) SECURITY DEFINER;
ALTER FUNCTION broadcast.create_list(text, text, text) SECURITY DEFINER;
ALTER FUNCTION broadcast.subscribe(text, text, text[], text) SECURITY DEFINER;

COMMENT ON FUNCTION broadcast.delete_contacts(text, text[]) IS
	'Deletes contacts and their list memberships; history and suppressions stay (see forget_contact for erasure)';

COMMENT ON FUNCTION broadcast.suppress(text, text[], text, text) IS
	'Suppresses addresses for the workspace and drops their queued messages';

/*
 * 30_caller: tenant checks hold behind any front (issue 11, section 3).
 *
 * The SECURITY DEFINER API used to authorise session_user, the login role.
 * Behind PostgREST that is the "authenticator", a member of every tenant
 * role, which switches with SET ROLE per request, so every tenant could act
 * in every workspace.  The checks now judge broadcast._caller(): the role in
 * effect outside any function (the login role, or the one set by SET ROLE,
 * SET LOCAL ROLE or SET SESSION AUTHORIZATION), which a SECURITY DEFINER
 * switch does not change and which cannot be changed inside one
 * (src/caller.c).  Switching roles therefore never widens access: a role
 * reaches what the role it became may reach.  Invoker-rights functions run
 * under row level security as current_user; _authorize now also requires the
 * caller's access, so both kinds of function agree.
 */

/* the role the call is made as: GetOuterUserId() */
CREATE FUNCTION broadcast._caller()
RETURNS oid
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'be_caller';
COMMENT ON FUNCTION broadcast._caller() IS
	'The role the current call is made as (after SET ROLE), unchanged by SECURITY DEFINER functions';

/* may role use the workspace: an administrator, or a member of a granted role */
CREATE FUNCTION broadcast._role_has_workspace_access(p_role oid, p_workspace_id text)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.pg_has_role(p_role, 'broadcast_admin', 'MEMBER')
		OR EXISTS (SELECT 1 FROM broadcast.workspace_grants g
					 JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name
					WHERE g.workspace_id = p_workspace_id
					  AND pg_catalog.pg_has_role(p_role, r.oid, 'MEMBER'))
$$;

/*
 * Used by SECURITY DEFINER functions, where current_user is the owner: the
 * calling role must be an administrator.
 */
CREATE OR REPLACE FUNCTION broadcast._require_admin(action text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT pg_has_role(broadcast._caller(), 'broadcast_admin', 'MEMBER') THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied to %s', action),
			HINT = 'Only members of broadcast_admin may do this.';
	END IF;
END
$$;

/*
 * In SECURITY DEFINER functions current_user is the owner, so access is
 * checked for the calling role (after SET ROLE), not the login role: a
 * front that logs in as a member of every tenant and switches per request
 * gets the rights of the tenant it switched to, never more.
 */
CREATE OR REPLACE FUNCTION broadcast._authorize_caller(p_workspace_id text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_id('workspace', p_workspace_id);
	IF NOT broadcast._role_has_workspace_access(broadcast._caller(), p_workspace_id) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied for workspace %s', quote_literal(p_workspace_id)),
			HINT = 'An administrator can grant access with broadcast.grant_workspace().';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('workspace %s does not exist', quote_literal(p_workspace_id));
	END IF;
END
$$;

/*
 * Invoker-rights API functions: row level security already applies as
 * current_user; the calling role must have access too, so that a function
 * owned by someone else cannot lend its owner's workspaces to its caller.
 * Both are the same role unless the call comes through such a function.
 */
CREATE OR REPLACE FUNCTION broadcast._authorize(p_workspace_id text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._check_id('workspace', p_workspace_id);
	IF NOT (broadcast.has_workspace_access(p_workspace_id)
			AND broadcast._role_has_workspace_access(broadcast._caller(), p_workspace_id)) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied for workspace %s', quote_literal(p_workspace_id)),
			HINT = 'An administrator can grant access with broadcast.grant_workspace().';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id) THEN
		RAISE EXCEPTION USING
			ERRCODE = 'undefined_object',
			MESSAGE = format('workspace %s does not exist', quote_literal(p_workspace_id));
	END IF;
END
$$;

/* _authorize as a condition, for SQL functions that must stay inlinable */
CREATE FUNCTION broadcast._authorized(p_workspace_id text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize(p_workspace_id);
	RETURN true;
END
$$;

/* a web front (broadcast_webhook) may post for any workspace; others need a grant */
CREATE OR REPLACE FUNCTION broadcast._authorize_webhook(p_workspace_id text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_has_role(broadcast._caller(), 'broadcast_webhook', 'MEMBER') THEN
		PERFORM broadcast._check_id('workspace', p_workspace_id);
		IF NOT EXISTS (SELECT 1 FROM broadcast.workspaces w WHERE w.workspace_id = p_workspace_id) THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = format('workspace %s does not exist', quote_literal(p_workspace_id));
		END IF;
	ELSE
		PERFORM broadcast._authorize_caller(p_workspace_id);
	END IF;
END
$$;

/* record_webhook: the workspace check comes before the body is looked at */
CREATE OR REPLACE FUNCTION broadcast.record_webhook(
	workspace_id text,
	integration_id text,
	body text,
	headers jsonb DEFAULT NULL,
	OUT received integer, OUT applied integer, OUT changed integer, OUT pending integer,
	OUT unknown integer, OUT ignored integer, OUT suppressed integer, OUT confirm_url text)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	payload jsonb;
	r record;
BEGIN
	PERFORM broadcast._authorize_webhook(record_webhook.workspace_id);
	IF body IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'body must not be NULL';
	END IF;
	BEGIN
		payload := body::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'webhook body is not valid JSON',
			DETAIL = format('The body starts with %s.', broadcast._show(left(body, 60)));
	END;
	r := broadcast._record(workspace_id, integration_id, payload, body, headers);
	received := r.received; applied := r.applied; changed := r.changed; pending := r.pending;
	unknown := r.unknown; ignored := r.ignored; suppressed := r.suppressed; confirm_url := r.confirm_url;
END
$$;

/* schedule_broadcast at a local time: the workspace check comes first */
CREATE OR REPLACE FUNCTION broadcast.schedule_broadcast(
	workspace_id text,
	broadcast_id text,
	local_time timestamp,
	timezone text,
	recipient_timezone boolean DEFAULT false)
RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM broadcast._authorize(schedule_broadcast.workspace_id);
	IF local_time IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'local_time must not be NULL';
	END IF;
	PERFORM broadcast._check_timezone(timezone);
	RETURN broadcast._schedule(workspace_id, broadcast_id, local_time AT TIME ZONE timezone,
							   local_time, timezone, coalesce(recipient_timezone, false));
END
$$;

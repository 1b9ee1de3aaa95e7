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

COMMENT ON FUNCTION broadcast._caller() IS
	'The role the current call is made as (after SET ROLE), unchanged by SECURITY DEFINER functions';


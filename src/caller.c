/*-------------------------------------------------------------------------
 *
 * caller.c
 *	  The role an API call is made for: broadcast._caller().
 *
 * A SECURITY DEFINER function runs as its owner, so current_user cannot tell
 * it who called.  session_user can tell the login role, but behind a front
 * such as PostgREST that is the "authenticator", a member of every tenant
 * role, which switches with SET ROLE per request: judging it would let every
 * tenant act for every other.
 *
 * GetOuterUserId() (src/backend/utils/init/miscinit.c) is the role in effect
 * outside any function: the login role, or the one chosen by SET ROLE or SET
 * SESSION AUTHORIZATION.  Entering a SECURITY DEFINER function changes only
 * the current user, never the outer one, and PostgreSQL refuses SET ROLE and
 * SET SESSION AUTHORIZATION inside such a function ("cannot set parameter
 * within security-definer function"), so nothing the engine's functions call
 * can change the answer.  SET ROLE itself only reaches roles the session user
 * is a member of.  The value lives in the backend, not in a session variable
 * the caller sets, so transaction pooling (SET LOCAL ROLE per transaction)
 * needs nothing more.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

PG_FUNCTION_INFO_V1(be_caller);

Datum
be_caller(PG_FUNCTION_ARGS)
{
	Oid			role = GetOuterUserId();

	Assert(OidIsValid(role));
	PG_RETURN_OID(role);
}

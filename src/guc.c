/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Configuration parameters of broadcast_engine.
 *
 * Every parameter is documented in docs/configuration.md.  Parameters that
 * decide which database or role the workers connect as cannot change
 * without a restart; everything that tunes a running worker is PGC_SIGHUP.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "broadcast_engine.h"

char	   *be_database_name = NULL;
char	   *be_database_user = NULL;

void
be_define_gucs(void)
{
	DefineCustomStringVariable("broadcast_engine.database",
							   "Database in which the broadcast_engine workers run.",
							   "The extension must be created in this database.",
							   &be_database_name,
							   "postgres",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("broadcast_engine.database_user",
							   "Role the broadcast_engine workers connect as.",
							   "Empty means the bootstrap superuser.",
							   &be_database_user,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("broadcast_engine");
}

/*-------------------------------------------------------------------------
 *
 * broadcast_engine.c
 *	  Module entry point: parameters, and (when preloaded) the workers.
 *
 * The SQL API works without preloading; only the background workers need
 * shared_preload_libraries.  The install script tells the user when they
 * will not run.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "broadcast_engine.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	be_define_gucs();

	/* workers only when preloaded, and never during pg_upgrade */
	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;
	be_shmem_init();
	be_register_launcher();
	be_register_edge();
}

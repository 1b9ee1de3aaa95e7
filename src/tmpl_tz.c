/*-------------------------------------------------------------------------
 *
 * tmpl_tz.c
 *	  The time zone resolver of the template engine's "date" filter in the
 *	  backend: IANA names through PostgreSQL's own tz database (pg_tzset,
 *	  pg_localtime), the same one that checks contacts' and workspaces'
 *	  time zones, so every zone they may hold resolves.
 *
 * Crash argument: the engine calls this in the middle of a render, with
 * malloc'd state that a longjmp would leak and a context a longjmp would
 * leave half-way, so no error may escape.  pg_tzset raises only when its
 * cache cannot grow (out of memory) and pg_localtime never raises; such an
 * error is caught here and the zone reported unknown.  The backend is
 * single-threaded, so pg_localtime's static result is safe.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pgtime.h"
#include "utils/memutils.h"

#include "tmpl.h"
#include "tmpl_tz.h"

bool
be_tz_resolve(void *arg, const char *zone, long long utc_secs, int *offset_secs,
			  char *abbrev, size_t abbrev_cap)
{
	MemoryContext old = CurrentMemoryContext;
	volatile bool ok = false;

	PG_TRY();
	{
		pg_tz	   *tz = pg_tzset(zone);
		pg_time_t	t = (pg_time_t) utc_secs;
		struct pg_tm *tm;

		if (tz != NULL && (tm = pg_localtime(&t, tz)) != NULL)
		{
			*offset_secs = (int) tm->tm_gmtoff;
			/* numeric abbreviations ("+03") say less than "%z": leave them out */
			if (tm->tm_zone && isalpha((unsigned char) tm->tm_zone[0]))
				snprintf(abbrev, abbrev_cap, "%s", tm->tm_zone);
			ok = true;
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

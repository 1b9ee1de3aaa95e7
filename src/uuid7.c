/*-------------------------------------------------------------------------
 *
 * uuid7.c
 *	  Time-ordered message ids (UUID version 7, RFC 9562).
 *
 * A message id is created when a recipient is queued and becomes the
 * primary key of its message_history row.  Random (version 4) ids scatter
 * those inserts over the whole index, which costs a page read per row once
 * the history outgrows shared_buffers; version 7 ids start with the
 * millisecond they were made, so a broadcast's history rows land at the
 * right edge of the index.  74 bits stay random.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "port.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(be_uuid_v7);

Datum
be_uuid_v7(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));
	uint64		ms;
	int			i;

	/* Unix milliseconds (TimestampTz counts microseconds from 2000-01-01) */
	ms = (uint64) (GetCurrentTimestamp() / 1000) +
		(uint64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
	if (!pg_strong_random(u->data + 6, UUID_LEN - 6))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	for (i = 0; i < 6; i++)
		u->data[i] = (unsigned char) (ms >> (8 * (5 - i)));
	u->data[6] = (u->data[6] & 0x0f) | 0x70;	/* version 7 */
	u->data[8] = (u->data[8] & 0x3f) | 0x80;	/* RFC 9562 variant */
	PG_RETURN_UUID_P(u);
}

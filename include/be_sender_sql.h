/*-------------------------------------------------------------------------
 *
 * be_sender_sql.h
 *	  The sender's statements (sender_sql.c), with typed arguments and
 *	  results.
 *
 * Every function runs inside a unit of work (exec.c: be_exec_unit), and
 * allocates what it returns in the caller's current memory context.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BE_SENDER_SQL_H
#define BE_SENDER_SQL_H

#include "be_sender.h"

struct ComposeBroadcastSrc;

/* a (workspace, integration) pair with queued rows */
typedef struct BePairRow
{
	char	   *workspace_id;
	char	   *integration_id;
	TimestampTz next_due;		/* DT_NOEND when not known */
} BePairRow;

extern int	be_sql_active_pairs(BePairRow **rows);

/* fills ig's settings from its rows; false when the integration is gone */
extern bool be_sql_load_integration(const char *ws, const char *integ, BeIntegration *ig);

/*
 * Fills src with a broadcast's pinned templates and workspace settings;
 * returns the number of variations found (0: none pinned).
 */
extern int	be_sql_load_broadcast(const char *ws, const char *bid,
								  struct ComposeBroadcastSrc *src);

/* what _cap_reserve granted a claim */
typedef struct BeCapGrant
{
	bool		found;			/* the function answered */
	int			granted;
	bool		capped;			/* the pair has caps: hour/day are set */
	TimestampTz hour_start;
	TimestampTz day_start;
	bool		has_wait;		/* wait_until is set */
	TimestampTz wait_until;		/* nothing granted: when a period opens */
} BeCapGrant;

extern void be_sql_cap_reserve(const char *ws, const char *integ, int want, BeCapGrant *out);
extern void be_sql_cap_add(const char *ws, const char *integ, TimestampTz hour,
						   TimestampTz day, int n);

/* a claim of one pair's due rows */
typedef struct BeClaimArgs
{
	const char *workspace_id;
	const char *integration_id;
	int			want;
	double		lease_s;
	TimestampTz claim_from;		/* the pair's claim cursor (DT_NOBEGIN: none) */
} BeClaimArgs;

/* one claimed queue row, with its contact's columns */
typedef struct BeClaimRow
{
	ItemPointerData tid;
	char	   *broadcast_id;
	char	   *email;
	char	   *list_id;
	int			variation;
	char	   *message_id;
	int			attempts;
	TimestampTz next_attempt_at;
	/* the contact (properties NULL: the contact is gone) */
	char	   *properties;
	char	   *first_name;
	char	   *last_name;
	char	   *language;
	char	   *timezone;
} BeClaimRow;

typedef struct BeClaimResult
{
	BeClaimRow *rows;
	int			nrows;
	int			parked;			/* due rows moved to their window's opening */
} BeClaimResult;

extern void be_sql_claim(const BeClaimArgs *in, BeClaimResult *out);

/* what the record does with one message's queue row */
typedef enum BeRecordKind
{
	BE_REC_SENT,				/* history row, queue row deleted */
	BE_REC_RETRY,				/* back to the queue after retry_ms */
	BE_REC_DEAD,				/* history row, queue row dead-lettered */
	BE_REC_UNSENT				/* never started: back, no attempt spent */
} BeRecordKind;

typedef struct BeRecordItem
{
	const BeMessage *m;
	BeRecordKind kind;
	int			retry_ms;
} BeRecordItem;

extern void be_sql_record(const char *ws, const char *integ, const char *provider,
						  const BeRecordItem *items, int n);
extern int	be_sql_nudge_drained(const char *ws, const BeRecordItem *items, int n);

#endif							/* BE_SENDER_SQL_H */

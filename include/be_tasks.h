/*-------------------------------------------------------------------------
 *
 * be_tasks.h
 *	  Durable tasks and the orchestrator that runs them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BE_TASKS_H
#define BE_TASKS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* what a step decided about its task */
typedef enum BeStepResult
{
	BE_STEP_CONTINUE,			/* more work now: run another unit */
	BE_STEP_RELEASED,			/* waiting for something: task released */
	BE_STEP_DONE,				/* the task ended (completed, failed...) */
	BE_STEP_LOST				/* someone else owns it now, or it was paused */
} BeStepResult;

/* A claimed task and, once per step, its broadcast's settings. */
typedef struct BeTask
{
	MemoryContext cxt;			/* the task's own memory */
	MemoryContext step_cxt;		/* reset at the start of every step */
	char	   *workspace_id;
	int64		task_id;
	char	   *broadcast_id;
	char	   *token;			/* lease token (uuid text) */
	char	   *phase;
	char	   *cursor;			/* keyset cursor over emails; "" at start */
	bool		has_cutoff;		/* A/B sample boundary */
	int64		cutoff_hash;
	char	   *cutoff_email;
	bool		lost;
	BeStepResult result;		/* of the last unit */

	/* the broadcast, loaded once per step */
	bool		loaded;
	Datum		lists;			/* text[] */
	Datum		exclude_lists;	/* text[] */
	char	   *integration_id;
	char	   *status;
	char	   *ab_metric;
	char	   *ws_timezone;
	bool		is_ab;
	int			ab_sample_percent;
	bool		ab_auto;
	double		ab_duration_s;
	bool		recipient_tz;
	bool		has_local_time;
	Timestamp	local_send_at;
	bool		has_test_completed;
	TimestampTz test_completed_at;
	int64		total_recipients;
	int			nvariations;
	int			winner_variation;	/* -1 until chosen */
	int64		seed;
	char	   *audience_pred;	/* segments/follow-up over contacts c, or NULL */
} BeTask;

/* tasks.c */
extern List *be_tasks_claim(MemoryContext cxt);
extern void be_task_release(BeTask *t, const char *phase, TimestampTz run_at);
extern void be_task_set_status(BeTask *t, const char *status);
extern void be_task_record_failure(BeTask *t, const char *message);
extern void be_task_wait(BeTask *t, const char *why, int delay_ms);
extern void be_task_advance(BeTask *t, const char *phase, const char *cursor);
extern void be_task_lost(BeTask *t, const char *why) pg_attribute_noreturn();
extern bool be_tasks_next_due_ms(int64 *ms);

/* orchestrator.c */
extern void be_orchestrator_load(void *arg);
extern void be_orchestrator_step_unit(void *arg);

#endif							/* BE_TASKS_H */

/*-------------------------------------------------------------------------
 *
 * broadcast_engine.h
 *	  Declarations shared by the extension's server-side modules.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BROADCAST_ENGINE_H
#define BROADCAST_ENGINE_H

/* guc.c */
extern char *be_database_name;
extern char *be_database_user;

extern void be_define_gucs(void);

#endif							/* BROADCAST_ENGINE_H */

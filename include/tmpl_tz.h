/*
 * tmpl_tz.h
 *	  Backend time zone resolver for the template engine (src/tmpl_tz.c).
 */
#ifndef TMPL_TZ_H
#define TMPL_TZ_H

#include <stdbool.h>
#include <stddef.h>

extern bool be_tz_resolve(void *arg, const char *zone, long long utc_secs,
						  int *offset_secs, char *abbrev, size_t abbrev_cap);

#endif							/* TMPL_TZ_H */

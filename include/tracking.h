/*-------------------------------------------------------------------------
 *
 * tracking.h
 *	  First-party open and click tracking of rendered HTML (tracking.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef BE_TRACKING_H
#define BE_TRACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "be_buf.h"

typedef struct TrackParams
{
	const char *base_url;		/* the edge's /t, without a final slash */
	const uint8_t *secret;
	size_t		secret_len;
	const char *workspace_id;
	const char *message_id;
	const char *unsubscribe_url;	/* never rewritten; may be NULL */
	const char *skip_prefix;	/* links starting so are kept (the /c/ link); may be NULL */
} TrackParams;

/*
 * Writes html to out with every http(s) href of an <a> tag replaced by
 * base_url/c/<token> and the open pixel base_url/o/<token> added before the
 * last </body> (or at the end).  scratch and token are work buffers.
 * Returns the number of links rewritten, or -1 when out of memory.
 */
extern int	track_rewrite_html(const char *html, size_t len, const TrackParams *p,
							   BeBuf *out, BeBuf *scratch, BeBuf *token);

#endif							/* BE_TRACKING_H */

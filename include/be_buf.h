/*-------------------------------------------------------------------------
 *
 * be_buf.h
 *	  Growable byte buffer used by the server-independent modules
 *	  (template engine, MIME builder, unsubscribe tokens).
 *
 * These modules must build without PostgreSQL headers so they can be unit
 * tested, run under valgrind/ASan and fuzzed on their own.  They therefore
 * use malloc, never palloc, and never longjmp: every failure is a return
 * code.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BE_BUF_H
#define BE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct BeBuf
{
	char	   *data;			/* always NUL-terminated when len > 0 */
	size_t		len;
	size_t		cap;
	bool		oom;			/* set once an allocation failed */
} BeBuf;

static inline void
be_buf_init(BeBuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

static inline void
be_buf_reset(BeBuf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
	b->oom = false;
}

static inline void
be_buf_free(BeBuf *b)
{
	free(b->data);
	be_buf_init(b);
}

/* Make room for at least "extra" more bytes plus a terminator. */
static inline bool
be_buf_reserve(BeBuf *b, size_t extra)
{
	size_t		need;
	size_t		ncap;
	char	   *nd;

	if (b->oom)
		return false;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	nd = realloc(b->data, ncap);
	if (nd == NULL)
	{
		b->oom = true;
		return false;
	}
	b->data = nd;
	b->cap = ncap;
	return true;
}

static inline bool
be_buf_append(BeBuf *b, const char *s, size_t n)
{
	if (!be_buf_reserve(b, n))
		return false;
	if (n)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

static inline bool
be_buf_puts(BeBuf *b, const char *s)
{
	return be_buf_append(b, s, strlen(s));
}

static inline bool
be_buf_putc(BeBuf *b, char c)
{
	return be_buf_append(b, &c, 1);
}

#endif							/* BE_BUF_H */

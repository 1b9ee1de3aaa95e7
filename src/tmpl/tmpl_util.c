/*-------------------------------------------------------------------------
 *
 * tmpl_util.c
 *	  Arena allocator, errors and default limits.
 *
 * See src/tmpl/tmpl_int.h for the shared types and the design.
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

void
arena_init(Arena *a)
{
	memset(a, 0, sizeof(*a));
}

void
arena_free(Arena *a)
{
	ArenaChunk *c = a->first;

	while (c)
	{
		ArenaChunk *n = c->next;

		free(c);
		c = n;
	}
	arena_init(a);
}

void *
arena_alloc(Arena *a, size_t n)
{
	ArenaChunk *c;
	void	   *p;

	n = (n + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);
	if (n == 0)
		n = ARENA_ALIGN;
	if (a->limit && (n > a->limit || a->inuse > a->limit - n))
	{
		a->over_limit = true;
		return NULL;
	}
	c = a->cur;
	if (c == NULL || c->size - c->used < n)
	{
		/* reuse a chunk kept from an earlier render if it fits */
		if (c && c->next && c->next->size >= n)
		{
			c = c->next;
			c->used = 0;
		}
		else
		{
			size_t		sz = n > ARENA_CHUNK ? n : ARENA_CHUNK;
			ArenaChunk *nc = malloc(sizeof(ArenaChunk) + sz);

			if (nc == NULL)
			{
				a->over_limit = false;
				return NULL;
			}
			nc->size = sz;
			nc->used = 0;
			if (c == NULL)
			{
				nc->next = a->first;
				a->first = nc;
			}
			else
			{
				nc->next = c->next;
				c->next = nc;
			}
			c = nc;
		}
		a->cur = c;
	}
	p = c->data + c->used;
	c->used += n;
	a->inuse += n;
	return p;
}

/* ----------------------------------------------------------------
 * Errors and positions
 * ----------------------------------------------------------------
 */
void
set_error(TmplError *err, TmplErrorKind kind, int line, int col,
		  const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return;
	err->kind = kind;
	err->line = line;
	err->column = col;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

void
tmpl_default_limits(TmplLimits *lim)
{
	lim->max_output = 1024 * 1024;
	lim->max_iterations = 100000;
	lim->max_depth = 32;
}


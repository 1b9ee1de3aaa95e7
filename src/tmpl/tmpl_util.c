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


/*
 * Nearest of "names" (NULL-terminated, entries "stride" bytes apart) to the
 * unknown name, for "did you mean" hints: the smallest Levenshtein distance
 * if it is at most a third of the name's length (at least 1, at most 3),
 * else NULL.  Names longer than 32 bytes get no hint.
 */
const char *
tmpl_nearest_name(const char *name, size_t n, const void *names, size_t stride)
{
	const char *best = NULL;
	int			bestd = (int) (n / 3 < 1 ? 1 : n / 3 > 3 ? 3 : n / 3) + 1;
	const char *const *np;

	if (n == 0 || n > 32)
		return NULL;
	for (np = names; *np; np = (const char *const *) ((const char *) np + stride))
	{
		const char *cand = *np;
		size_t		m = strlen(cand);
		int			row[33];
		size_t		i,
					j;

		if (m > 32 || (m > n ? m - n : n - m) >= (size_t) bestd)
			continue;
		for (j = 0; j <= m; j++)
			row[j] = (int) j;
		for (i = 1; i <= n; i++)
		{
			int			diag = row[0];

			row[0] = (int) i;
			for (j = 1; j <= m; j++)
			{
				int			up = row[j];
				int			v = diag + (name[i - 1] != cand[j - 1]);

				if (up + 1 < v)
					v = up + 1;
				if (row[j - 1] + 1 < v)
					v = row[j - 1] + 1;
				row[j] = v;
				diag = up;
			}
		}
		if (row[m] < bestd)
		{
			bestd = row[m];
			best = cand;
		}
	}
	return best;
}

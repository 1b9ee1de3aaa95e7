/*-------------------------------------------------------------------------
 *
 * tmpl_date.c
 *	  Dates: parsing the inputs of the "date" filter and strftime.
 *
 * See src/tmpl/tmpl_int.h for the shared types and the design.
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

/* ----------------------------------------------------------------
 * Renderer: dates
 * ----------------------------------------------------------------
 */
#define MIN_EPOCH	(-62167219200LL)	/* 0000-01-01 */
#define MAX_EPOCH	253402300799LL	/* 9999-12-31 23:59:59 */

static const char *const month_names[] = {
	"January", "February", "March", "April", "May", "June", "July",
	"August", "September", "October", "November", "December"
};
static const char *const day_names[] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"
};

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t		era;
	int64_t		yoe;
	int64_t		doy;
	int64_t		doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t		era;
	int64_t		doe;
	int64_t		yoe;
	int64_t		doy;
	int64_t		mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int64_t y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static bool
take_digits(const char **pp, const char *end, int n, int *out)
{
	const char *p = *pp;
	int			v = 0;
	int			i;

	if (end - p < n)
		return false;
	for (i = 0; i < n; i++)
	{
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*pp = p + n;
	*out = v;
	return true;
}

/* ISO 8601 / PostgreSQL timestamptz text to unix seconds */
static bool
parse_iso(const char *p, const char *end, int64_t *secs)
{
	int			y,
				mo,
				d,
				h = 0,
				mi = 0,
				s = 0,
				oh = 0,
				om = 0;
	int			sign = 1;

	if (!take_digits(&p, end, 4, &y) || p >= end || *p++ != '-' ||
		!take_digits(&p, end, 2, &mo) || p >= end || *p++ != '-' ||
		!take_digits(&p, end, 2, &d))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return false;
	if (p < end && (*p == 'T' || *p == 't' || *p == ' '))
	{
		p++;
		if (!take_digits(&p, end, 2, &h) || p >= end || *p++ != ':' ||
			!take_digits(&p, end, 2, &mi))
			return false;
		if (p < end && *p == ':')
		{
			p++;
			if (!take_digits(&p, end, 2, &s))
				return false;
			if (p < end && (*p == '.' || *p == ','))
			{
				p++;
				while (p < end && *p >= '0' && *p <= '9')
					p++;
			}
		}
		if (h > 23 || mi > 59 || s > 60)
			return false;
		while (p < end && *p == ' ')
			p++;
		if (p < end && (*p == 'Z' || *p == 'z'))
			p++;
		else if (end - p >= 3 && memcmp(p, "UTC", 3) == 0)
			p += 3;
		else if (p < end && (*p == '+' || *p == '-'))
		{
			sign = *p++ == '-' ? -1 : 1;
			if (!take_digits(&p, end, 2, &oh))
				return false;
			if (p < end && *p == ':')
				p++;
			if (p < end && *p >= '0' && *p <= '9' && !take_digits(&p, end, 2, &om))
				return false;
			if (oh > 23 || om > 59)
				return false;
		}
	}
	if (p != end)
		return false;
	*secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s -
		sign * (oh * 3600 + om * 60);
	return true;
}

/* index 1..12 of an English month name or its 3-letter abbreviation */
static int
month_of(const char *p, size_t n)
{
	int			m;

	for (m = 0; m < 12; m++)
	{
		size_t		full = strlen(month_names[m]);

		if ((n == full || n == 3 || (m == 8 && n == 4)) && n <= full &&
			strncasecmp(p, month_names[m], n) == 0)
			return m + 1;
	}
	return 0;
}

/*
 * Dates as people and mail headers write them, which Liquid (Ruby's
 * Date._parse) accepts: "March 14, 2016", "14 Mar 2016", RFC 2822's
 * "Mon, 14 Mar 2016 10:00:00 +0100", with an optional time (HH:MM[:SS])
 * and zone (+HHMM, -HH:MM, UTC, GMT, Z; default UTC).  Needs a month
 * name, a day and a 4-digit year.
 */
static bool
parse_human(const char *p, const char *end, int64_t *secs)
{
	int			year = -1;
	int			month = 0;
	int			day = 0;
	int			hh = 0,
				mi = 0,
				ss = 0;
	int			zone = 0;		/* seconds east of UTC */

	while (p < end)
	{
		const char *t = p;
		size_t		n;

		if (is_ws(*p) || *p == ',')
		{
			p++;
			continue;
		}
		while (p < end && !is_ws(*p) && *p != ',')
			p++;
		n = (size_t) (p - t);
		if (isalpha((unsigned char) t[0]))
		{
			int			m = month_of(t, n);
			int			d;
			bool		weekday = false;

			if (n > 1 && t[n - 1] == '.')
				m = month_of(t, n - 1);
			for (d = 0; d < 7 && !m; d++)
				if ((n == 3 || n == strlen(day_names[d])) && strncasecmp(t, day_names[d], n) == 0)
					weekday = true;
			if (m && !month)
				month = m;
			else if (weekday)
				continue;
			else if ((n == 3 && (strncasecmp(t, "UTC", 3) == 0 || strncasecmp(t, "GMT", 3) == 0)) ||
					 (n == 1 && (*t == 'Z' || *t == 'z')))
				zone = 0;
			else
				return false;
		}
		else if ((*t == '+' || *t == '-') && (n == 5 || n == 6))
		{
			int			zh,
						zm;
			const char *q = t + 1;

			if (!take_digits(&q, t + n, 2, &zh))
				return false;
			if (q < t + n && *q == ':')
				q++;
			if (!take_digits(&q, t + n, 2, &zm) || q != t + n || zh > 23 || zm > 59)
				return false;
			zone = (zh * 3600 + zm * 60) * (*t == '-' ? -1 : 1);
		}
		else if (memchr(t, ':', n))
		{
			const char *q = t;

			if (!take_digits(&q, t + n, t[1] == ':' ? 1 : 2, &hh) || q >= t + n || *q++ != ':' ||
				!take_digits(&q, t + n, 2, &mi))
				return false;
			if (q < t + n && *q == ':')
			{
				q++;
				if (!take_digits(&q, t + n, 2, &ss))
					return false;
			}
			if (q != t + n || hh > 23 || mi > 59 || ss > 60)
				return false;
		}
		else if (n == 4 && year < 0 && isdigit((unsigned char) t[3]))
		{
			const char *q = t;

			if (!take_digits(&q, t + n, 4, &year))
				return false;
		}
		else if ((n == 1 || n == 2 || (n > 2 && isalpha((unsigned char) t[n - 1]))) && day == 0)
		{
			/* 14, 14th, 1st */
			const char *q = t;
			size_t		dn = 0;

			while (dn < n && t[dn] >= '0' && t[dn] <= '9')
				dn++;
			if (dn == 0 || dn > 2 || !take_digits(&q, t + dn, (int) dn, &day))
				return false;
		}
		else
			return false;
	}
	if (year < 0 || month == 0 || day < 1 || day > days_in_month(year, month))
		return false;
	*secs = days_from_civil(year, month, day) * 86400 + hh * 3600 + mi * 60 + ss - zone;
	return true;
}

bool
value_to_time(TmplRenderCtx *c, const Value *v, int64_t *secs)
{
	if (v->t == V_INT)
		*secs = v->u.i;
	else if (v->t == V_DBL)
	{
		if (!(v->u.d > (double) MIN_EPOCH && v->u.d < (double) MAX_EPOCH))
			return false;
		*secs = (int64_t) floor(v->u.d);
	}
	else if (v->t == V_STR)
	{
		const char *p = v->u.s.p;
		const char *end = p + v->u.s.n;
		const char *q;

		while (p < end && is_ws(*p))
			p++;
		while (end > p && is_ws(end[-1]))
			end--;
		if (name_is(p, (size_t) (end - p), "now") || name_is(p, (size_t) (end - p), "today"))
		{
			c->clock_used = true;
			*secs = (int64_t) time(NULL);
		}
		else
		{
			/* Liquid reads only unsigned digit strings as unix seconds */
			q = p;
			if (q < end && end - q <= 15)
			{
				const char *r = q;

				while (r < end && *r >= '0' && *r <= '9')
					r++;
				if (r == end)
				{
					char		buf[20];

					memcpy(buf, p, (size_t) (end - p));
					buf[end - p] = '\0';
					*secs = strtoll(buf, NULL, 10);
					goto range;
				}
			}
			if (!parse_iso(p, end, secs) && !parse_human(p, end, secs))
				return false;
		}
	}
	else
		return false;
range:
	return *secs >= MIN_EPOCH && *secs <= MAX_EPOCH;
}

/*
 * A zone name the core understands without a resolver: UTC and its
 * aliases, and fixed offsets "+HH", "+HHMM", "+HH:MM" (at most 18 hours).
 */
static bool
fixed_zone(const char *z, size_t n, int *off)
{
	int			h,
				m = 0;
	int			sign;

	if (name_is(z, n, "UTC") || name_is(z, n, "Etc/UTC") || name_is(z, n, "GMT") ||
		name_is(z, n, "Z") || name_is(z, n, "Etc/GMT") || name_is(z, n, "Zulu"))
	{
		*off = 0;
		return true;
	}
	if (n < 3 || (z[0] != '+' && z[0] != '-') || !isdigit((unsigned char) z[1]) ||
		!isdigit((unsigned char) z[2]))
		return false;
	sign = z[0] == '-' ? -1 : 1;
	h = (z[1] - '0') * 10 + (z[2] - '0');
	if (n == 6 && z[3] == ':' && isdigit((unsigned char) z[4]) && isdigit((unsigned char) z[5]))
		m = (z[4] - '0') * 10 + (z[5] - '0');
	else if (n == 5 && isdigit((unsigned char) z[3]) && isdigit((unsigned char) z[4]))
		m = (z[3] - '0') * 10 + (z[4] - '0');
	else if (n != 3)
		return false;
	if (h > 18 || m > 59 || h * 60 + m > 18 * 60)
		return false;
	*off = sign * (h * 3600 + m * 60);
	return true;
}

/* Offset of zone z at secs: fixed zones here, the rest by the resolver. */
static bool
resolve_zone(TmplRenderCtx *c, const char *z, size_t n, int64_t secs, int *off,
			 char *abbr, size_t cap)
{
	char		name[64];

	abbr[0] = '\0';
	if (fixed_zone(z, n, off))
	{
		if (*off == 0)
			snprintf(abbr, cap, "UTC");
		return true;
	}
	if (c->tz_fn == NULL || n == 0 || n >= sizeof(name) || memchr(z, '\0', n) != NULL)
		return false;
	memcpy(name, z, n);
	name[n] = '\0';
	c->zone_used = true;
	if (!c->tz_fn(c->tz_arg, name, (long long) secs, off, abbr, cap))
		return false;
	abbr[cap - 1] = '\0';
	/* a resolver's answer is trusted only within real-world bounds */
	return *off >= -18 * 3600 && *off <= 18 * 3600;
}

/* The string "timezone" of a top-level object of the data, or NULL. */
static const char *
data_zone(TmplRenderCtx *c, const char *root, size_t *n)
{
	struct json_object *o = NULL;
	struct json_object *z;

	if (c->t && c->t->const_data &&
		json_object_object_get_ex(c->t->const_data, root, &o))
		;
	else if (c->data == NULL || !json_object_is_type(c->data, json_type_object) ||
			 !json_object_object_get_ex(c->data, root, &o))
		return NULL;
	if (!json_object_is_type(o, json_type_object) ||
		!json_object_object_get_ex(o, "timezone", &z) ||
		!json_object_is_type(z, json_type_string))
		return NULL;
	*n = (size_t) json_object_get_string_len(z);
	return json_object_get_string(z);
}

/*
 * The zone a date filter renders in: its second argument, else the
 * contact's, else the workspace's, else UTC.  Anything but an explicit
 * fixed zone depends on the recipient or the resolver, which is why
 * zone_used keeps tmpl_specialize from pre-rendering it.
 */
int
date_zone(TmplRenderCtx *c, const FilterCall *fc, const Value *args, int64_t secs,
		  int *off, char *abbr, size_t cap)
{
	static const char *const roots[] = {"contact", "workspace"};
	int			i;

	if (fc->nargs >= 2 && args[1].t != V_NIL)
	{
		const char *z;
		size_t		n;

		if (args[1].t != V_STR)
			return rerr(c, TMPL_ERR_RUNTIME, "the time zone of \"date\" must be a string");
		z = args[1].u.s.p;
		n = args[1].u.s.n;
		if (!resolve_zone(c, z, n, secs, off, abbr, cap))
			return rerr(c, TMPL_ERR_RUNTIME, "unknown time zone \"%.*s\"",
						(int) (n > 64 ? 64 : n), z);
		return RC_OK;
	}
	c->zone_used = true;
	for (i = 0; i < 2; i++)
	{
		size_t		n;
		const char *z = data_zone(c, roots[i], &n);

		if (z != NULL && n > 0 && resolve_zone(c, z, n, secs, off, abbr, cap))
			return RC_OK;
	}
	*off = 0;
	snprintf(abbr, cap, "UTC");
	return RC_OK;
}

/*
 * Digits of v (v >= 0 here, or a year), left-padded with pad to width;
 * snprintf would do, but dates are formatted once per recipient.
 */
static int
put_num(char *buf, int64_t v, int width, char pad)
{
	char		d[24];
	const char *p = d;
	int			k = fmt_int(d, v);
	int			n = 0;

	if (*p == '-')
	{
		buf[n++] = '-';
		p++;
		k--;
	}
	while (n + k < width)
		buf[n++] = pad;
	memcpy(buf + n, p, (size_t) k + 1);
	return n + k;
}

/* the first max bytes of s (a NUL-terminated name) */
static int
put_str(char *buf, const char *s, size_t max)
{
	size_t		n = strnlen(s, max);

	memcpy(buf, s, n);
	buf[n] = '\0';
	return (int) n;
}

/*
 * strftime subset, locale-free: secs is UTC, shown at offset off (seconds
 * east) with abbreviation abbr for %Z ("+hh:mm" form when empty).
 */
size_t
format_time(char *out, size_t cap, const char *f, size_t fn, int64_t secs,
			int off, const char *abbr)
{
	int64_t		local = secs + off;
	int64_t		days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	int64_t		rem = local - days * 86400;
	int64_t		y;
	int			m,
				d;
	int			hh = (int) (rem / 3600);
	int			mi = (int) (rem / 60 % 60);
	int			ss = (int) (rem % 60);
	int			wday = (int) (((days % 7) + 11) % 7);	/* 1970-01-01 was a Thursday */
	int			yday;
	size_t		k = 0;
	size_t		i;

	civil_from_days(days, &y, &m, &d);
	yday = (int) (days - days_from_civil(y, 1, 1)) + 1;
	for (i = 0; i < fn; i++)
	{
		char		tmp[32];
		int			n;
		bool		nopad = false;
		char		cv;

		if (f[i] != '%' || i + 1 >= fn)
		{
			if (k + 1 >= cap)
				break;
			out[k++] = f[i];
			continue;
		}
		i++;
		if (f[i] == '-' && i + 1 < fn)
		{
			nopad = true;
			i++;
		}
		cv = f[i];
#define NUM(width, val) put_num(tmp, (val), nopad ? 0 : (width), '0')
		switch (cv)
		{
			case 'Y':
				n = put_num(tmp, y, 0, '0');
				break;
			case 'y':
				n = NUM(2, y % 100);
				break;
			case 'm':
				n = NUM(2, m);
				break;
			case 'd':
				n = NUM(2, d);
				break;
			case 'e':
				n = put_num(tmp, d, nopad ? 0 : 2, ' ');
				break;
			case 'j':
				n = NUM(3, yday);
				break;
			case 'H':
				n = NUM(2, hh);
				break;
			case 'I':
				n = NUM(2, hh % 12 == 0 ? 12 : hh % 12);
				break;
			case 'l':
				n = put_num(tmp, hh % 12 == 0 ? 12 : hh % 12, nopad ? 0 : 2, ' ');
				break;
			case 'M':
				n = NUM(2, mi);
				break;
			case 'S':
				n = NUM(2, ss);
				break;
			case 'p':
				n = put_str(tmp, hh < 12 ? "AM" : "PM", 2);
				break;
			case 'P':
				n = put_str(tmp, hh < 12 ? "am" : "pm", 2);
				break;
			case 'b':
			case 'h':
				n = put_str(tmp, month_names[m - 1], 3);
				break;
			case 'B':
				n = put_str(tmp, month_names[m - 1], sizeof(tmp) - 1);
				break;
			case 'a':
				n = put_str(tmp, day_names[wday], 3);
				break;
			case 'A':
				n = put_str(tmp, day_names[wday], sizeof(tmp) - 1);
				break;
			case 'u':
				n = put_num(tmp, wday == 0 ? 7 : wday, 0, '0');
				break;
			case 'w':
				n = put_num(tmp, wday, 0, '0');
				break;
			case 'Z':
				if (abbr && abbr[0])
					n = snprintf(tmp, sizeof(tmp), "%.15s", abbr);
				else
					n = snprintf(tmp, sizeof(tmp), "%c%02d:%02d", off < 0 ? '-' : '+',
								 abs(off) / 3600, abs(off) / 60 % 60);
				break;
			case 'z':
				n = snprintf(tmp, sizeof(tmp), "%c%02d%02d", off < 0 ? '-' : '+',
							 abs(off) / 3600, abs(off) / 60 % 60);
				break;
			case 's':
				n = snprintf(tmp, sizeof(tmp), "%lld", (long long) secs);
				break;
			case 'F':
				n = snprintf(tmp, sizeof(tmp), "%04lld-%02d-%02d", (long long) y, m, d);
				break;
			case 'T':
				n = snprintf(tmp, sizeof(tmp), "%02d:%02d:%02d", hh, mi, ss);
				break;
			case '%':
				n = snprintf(tmp, sizeof(tmp), "%%");
				break;
			default:
				/* unknown conversion: keep it as written */
				n = snprintf(tmp, sizeof(tmp), "%%%s%c", nopad ? "-" : "", cv);
				break;
		}
#undef NUM
		if (n < 0 || k + (size_t) n >= cap)
			break;
		memcpy(out + k, tmp, (size_t) n);
		k += (size_t) n;
	}
	out[k] = '\0';
	return k;
}


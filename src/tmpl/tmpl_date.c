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

/* strftime subset, locale-free, always UTC */
size_t
format_time(char *out, size_t cap, const char *f, size_t fn, int64_t secs)
{
	int64_t		days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t		rem = secs - days * 86400;
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
#define NUM(width, val) \
	snprintf(tmp, sizeof(tmp), nopad ? "%d" : (width) == 3 ? "%03d" : "%02d", (int) (val))
		switch (cv)
		{
			case 'Y':
				n = snprintf(tmp, sizeof(tmp), "%lld", (long long) y);
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
				n = snprintf(tmp, sizeof(tmp), nopad ? "%d" : "%2d", d);
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
				n = snprintf(tmp, sizeof(tmp), nopad ? "%d" : "%2d", hh % 12 == 0 ? 12 : hh % 12);
				break;
			case 'M':
				n = NUM(2, mi);
				break;
			case 'S':
				n = NUM(2, ss);
				break;
			case 'p':
				n = snprintf(tmp, sizeof(tmp), "%s", hh < 12 ? "AM" : "PM");
				break;
			case 'P':
				n = snprintf(tmp, sizeof(tmp), "%s", hh < 12 ? "am" : "pm");
				break;
			case 'b':
			case 'h':
				n = snprintf(tmp, sizeof(tmp), "%.3s", month_names[m - 1]);
				break;
			case 'B':
				n = snprintf(tmp, sizeof(tmp), "%s", month_names[m - 1]);
				break;
			case 'a':
				n = snprintf(tmp, sizeof(tmp), "%.3s", day_names[wday]);
				break;
			case 'A':
				n = snprintf(tmp, sizeof(tmp), "%s", day_names[wday]);
				break;
			case 'u':
				n = snprintf(tmp, sizeof(tmp), "%d", wday == 0 ? 7 : wday);
				break;
			case 'w':
				n = snprintf(tmp, sizeof(tmp), "%d", wday);
				break;
			case 'Z':
				n = snprintf(tmp, sizeof(tmp), "UTC");
				break;
			case 'z':
				n = snprintf(tmp, sizeof(tmp), "+0000");
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


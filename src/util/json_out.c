/* json_out.c - JSON string literals, one escaping policy (see json_out.h). */
#include "svcsensor/json_out.h"

#include <errno.h>
#include <string.h>

#include "svcsensor/utf8.h"

/* How many bytes from p pass unchanged: printable ASCII other than '"' and '\\', 0x7f, and
 * well-formed multi-byte sequences. */
static size_t plain_run(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		if (c < 0x80) {
			if (c < 0x20 || c == '"' || c == '\\')
				break;
			i++;
			continue;
		}
		size_t len = utf8__seq(p + i, n - i, NULL, NULL);
		if (!len)
			break;
		i += len;
	}
	return i;
}

/* The replacement of the unit at p (which plain_run stopped at) into out[8]: its length; the
 * input bytes it stands for in *used. */
static size_t escape_one(const unsigned char *p, size_t n, char out[8], size_t *used)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c = p[0];

	*used = 1;
	if (c >= 0x80) { /* ill-formed: one U+FFFD per maximal subpart */
		(void)utf8__seq(p, n, NULL, used);
		memcpy(out, "\xef\xbf\xbd", 3);
		return 3;
	}
	out[0] = '\\';
	switch (c) {
	case '"':
	case '\\':
		out[1] = (char)c;
		return 2;
	case '\b':
		out[1] = 'b';
		return 2;
	case '\f':
		out[1] = 'f';
		return 2;
	case '\n':
		out[1] = 'n';
		return 2;
	case '\r':
		out[1] = 'r';
		return 2;
	case '\t':
		out[1] = 't';
		return 2;
	default:
		memcpy(out + 1, "u00", 3);
		out[4] = hex[c >> 4];
		out[5] = hex[c & 15];
		return 6;
	}
}

static void put_n(struct textbuf *b, const char *s, size_t n)
{
	/* n fits: the callers checked the room. */
	memcpy(b->p, s, n);
	b->p += n;
}

static void buf_literal(struct textbuf *b, const unsigned char *p, size_t n)
{
	if (b->end - b->p < 2)
		return;
	*b->p++ = '"';
	b->end--; /* the closing quote's byte, given back below */
	while (n) {
		size_t run = plain_run(p, n);
		if (run) {
			size_t room = (size_t)(b->end - b->p);
			if (run > room) {
				/* Cut at a character boundary: drop a partial sequence. */
				run = room;
				while (run && (p[run] & 0xc0) == 0x80)
					run--;
				put_n(b, (const char *)p, run);
				break;
			}
			put_n(b, (const char *)p, run);
			p += run;
			n -= run;
			continue;
		}
		char esc[8];
		size_t used, len = escape_one(p, n, esc, &used);
		if (len > (size_t)(b->end - b->p))
			break;
		put_n(b, esc, len);
		p += used;
		n -= used;
	}
	b->end++;
	*b->p++ = '"';
}

void json_out__str(struct textbuf *b, const char *s)
{
	buf_literal(b, (const unsigned char *)s, strlen(s));
}

void json_out__strn(struct textbuf *b, const char *s, size_t max)
{
	buf_literal(b, (const unsigned char *)s, strnlen(s, max));
}

int json_out__fstr(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	fputc('"', f);
	while (n) {
		size_t run = plain_run(p, n);
		if (run) {
			fwrite(p, 1, run, f); /* names are plain text: mostly one run */
			p += run;
			n -= run;
			continue;
		}
		char esc[8];
		size_t used, len = escape_one(p, n, esc, &used);
		fwrite(esc, 1, len, f);
		p += used;
		n -= used;
	}
	fputc('"', f);
	return ferror(f) ? -EIO : 0;
}

/* utf8.c - the UTF-8 validator (see utf8.h). */
#include "svcsensor/utf8.h"

size_t utf8__seq(const unsigned char *s, size_t n, uint32_t *cp, size_t *bad)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;
	uint32_t v;

	if (c < 0x80) {
		if (cp)
			*cp = c;
		return 1;
	}
	/* The lead byte gives the length and the range of the second byte (the table's rows). */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1fu;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0fu;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07u;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else {
		if (bad)
			*bad = 1;
		return 0;
	}
	for (i = 1; i < len; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			if (bad)
				*bad = i;
			return 0;
		}
		v = (v << 6) | (s[i] & 0x3fu);
		lo = 0x80;
		hi = 0xbf;
	}
	if (cp)
		*cp = v;
	return len;
}

bool utf8__valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t len = utf8__seq(p, (size_t)(end - p), NULL, NULL);
		if (!len)
			return false;
		p += len;
	}
	return true;
}

bool utf8__name_ok(const char *s, size_t max_len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	if (!s || !*s)
		return false;
	while (p[n]) {
		if (p[n] < 0x20 || p[n] == 0x7f)
			return false;
		if (p[n] < 0x80) {
			n++;
		} else {
			/* A NUL ends the string: it fails the second byte's range check. */
			size_t len = utf8__seq(p + n, 4, NULL, NULL);
			if (!len)
				return false;
			n += len;
		}
		if (n > max_len)
			return false;
	}
	return true;
}

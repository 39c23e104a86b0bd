/* textbuf.h - append text to a bounded buffer without printf.
 *
 * The detector thread writes a CSV row and, for an anomaly, a JSON line per finished flow;
 * formatting them with printf was a third of its time on busy captures (perf). These helpers
 * never write past end (the text is cut instead) and never add a terminating NUL. */
#ifndef SVCSENSOR_TEXTBUF_H
#define SVCSENSOR_TEXTBUF_H

#include <stddef.h>
#include <stdint.h>

struct textbuf {
	char *p, *end; /* next byte to write, one past the last usable byte */
};

static inline void textbuf__char(struct textbuf *b, char c)
{
	if (b->p < b->end)
		*b->p++ = c;
}

static inline void textbuf__str(struct textbuf *b, const char *s)
{
	while (*s && b->p < b->end)
		*b->p++ = *s++;
}

static inline void textbuf__u64(struct textbuf *b, uint64_t v)
{
	char digits[20], *d = digits + sizeof(digits);
	do
		*--d = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (d < digits + sizeof(digits) && b->p < b->end)
		*b->p++ = *d++;
}

static inline void textbuf__i64(struct textbuf *b, int64_t v)
{
	if (v < 0) {
		textbuf__char(b, '-');
		textbuf__u64(b, (uint64_t)0 - (uint64_t)v);
	} else {
		textbuf__u64(b, (uint64_t)v);
	}
}

/* s, then spaces up to width characters (printf's %-*s). */
static inline void textbuf__str_pad(struct textbuf *b, const char *s, size_t width)
{
	char *start = b->p;
	textbuf__str(b, s);
	while ((size_t)(b->p - start) < width && b->p < b->end)
		*b->p++ = ' ';
}

/* v right-aligned in width characters (printf's %*llu). */
static inline void textbuf__u64_pad(struct textbuf *b, uint64_t v, size_t width)
{
	char digits[20], *d = digits + sizeof(digits);
	do
		*--d = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	for (size_t n = (size_t)(digits + sizeof(digits) - d); n < width && b->p < b->end; n++)
		*b->p++ = ' ';
	while (d < digits + sizeof(digits) && b->p < b->end)
		*b->p++ = *d++;
}

static inline size_t textbuf__len(const struct textbuf *b, const char *start)
{
	return (size_t)(b->p - start);
}

#endif

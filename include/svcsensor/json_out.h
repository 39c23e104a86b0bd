/* json_out.h - the one JSON string writer, with one policy for every JSON the sensor writes
 * (anomaly log, report, service map):
 *   - well-formed UTF-8 (utf8.h) passes through unchanged, 0x7f included (RFC 8259 requires
 *     escaping only the quote, the backslash and U+0000..U+001F);
 *   - the quote and the backslash are escaped as \" and \\; control characters below 0x20 as
 *     \b \f \n \r \t or \u00XX (lowercase hex), the spelling of Python's json module;
 *   - every ill-formed sequence is replaced by U+FFFD (EF BF BD), one per maximal subpart
 *     (utf8__seq), so text from the wire (an SNI, a DNS name) can never break a line.
 * The output is the literal with its quotes. A string that reads back (any JSON parser) gives
 * the input itself when the input is well-formed UTF-8.
 *
 * Caller-owned buffers and streams; no allocation; callable from any thread on its own buffer
 * or stream. */
#ifndef SVCSENSOR_JSON_OUT_H
#define SVCSENSOR_JSON_OUT_H

#include <stddef.h>
#include <stdio.h>

#include "svcsensor/textbuf.h"

/* The most bytes a literal of n input bytes takes, quotes included (a control byte: 6). */
#define JSON_OUT_MAX(n) (6 * (size_t)(n) + 2)

/* Append the literal of the NUL-terminated s to b. When b has less room than the literal
 * needs, the string is cut before the first escape or character that does not fit, and the
 * closing quote still written, so the output is always a whole literal (textbuf.h never writes
 * past its end; with fewer than 2 bytes of room nothing is written). */
void json_out__str(struct textbuf *b, const char *s);

/* The same for at most max bytes of s (fewer when a NUL comes first): for fixed-size fields
 * that may lack their NUL. A sequence cut by max is ill-formed, so it becomes U+FFFD. */
void json_out__strn(struct textbuf *b, const char *s, size_t max);

/* Write the literal of s to f. 0, or -EIO when the stream reports an error (ferror). */
int json_out__fstr(FILE *f, const char *s);

#endif

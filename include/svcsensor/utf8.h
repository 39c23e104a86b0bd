/* utf8.h - the one UTF-8 validator: well-formed sequences as the Unicode Standard's table of
 * well-formed byte sequences defines them (chapter 3, "Well-Formed UTF-8 Byte Sequences").
 *
 * Well-formed: U+0000..U+10FFFF except the surrogates U+D800..U+DFFF, each in its shortest
 * form. So C0/C1 leads (overlong two-byte forms), E0 80..9F (overlong three-byte), ED A0..BF
 * (surrogates), F0 80..8F (overlong four-byte), F4 90.. and F5..FF (beyond U+10FFFF) and a
 * lone continuation byte are all ill-formed.
 *
 * Pure functions over caller-owned bytes: no allocation, no errors beyond the return values,
 * callable from any thread. */
#ifndef SVCSENSOR_UTF8_H
#define SVCSENSOR_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sequence that starts at s (n > 0 bytes available): its length 1..4 when it is
 * well-formed (its code point in *cp when cp is not NULL), or 0 when it is not. In that case
 * *bad (when not NULL) is the length 1..3 of its maximal subpart: the longest prefix that
 * could start a well-formed sequence (at least the first byte). Replacing each maximal subpart
 * with one U+FFFD is the Unicode Standard's recommended practice (chapter 3, "U+FFFD
 * Substitution of Maximal Subparts"), which json_out.h follows. A NUL byte is the
 * well-formed one-byte sequence U+0000. */
size_t utf8__seq(const unsigned char *s, size_t n, uint32_t *cp, size_t *bad);

/* Are the n bytes at s well-formed UTF-8 throughout? (n == 0: yes.) */
bool utf8__valid(const char *s, size_t n);

/* Is the NUL-terminated s a name a file written as JSON can carry back unchanged and that
 * prints safely: 1..max_len bytes of well-formed UTF-8 without control characters (below
 * 0x20, and 0x7f)? The service map's host keys and application names follow this rule. */
bool utf8__name_ok(const char *s, size_t max_len);

#endif

/* test_util_text.c - the UTF-8 validator (utf8.h) and the JSON string writer (json_out.h).
 *
 * Expected values come from outside the code under test: the rows of the Unicode Standard's
 * table of well-formed UTF-8 byte sequences (chapter 3, Table 3-7), its worked examples of
 * U+FFFD substitution of maximal subparts (Tables 3-8 to 3-12), RFC 8259 section 7, and
 * Python's json module run as a separate process on the same bytes
 * (json.dumps(bytes.decode("utf-8", "replace"), ensure_ascii=False)). */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svcsensor/json_out.h"
#include "svcsensor/utf8.h"

#define FFFD "\xef\xbf\xbd"

/* ---- utf8 ---------------------------------------------------------------------------------- */

/* Table 3-7: the first and last sequence of every row, with its code point. */
static const struct {
	const char *bytes;
	size_t len;
	uint32_t cp;
} well_formed[] = {
    {"\x00", 1, 0x0},		    {"\x7f", 1, 0x7f},
    {"\xc2\x80", 2, 0x80},	    {"\xdf\xbf", 2, 0x7ff},
    {"\xe0\xa0\x80", 3, 0x800},	    {"\xe0\xbf\xbf", 3, 0xfff},
    {"\xe1\x80\x80", 3, 0x1000},    {"\xec\xbf\xbf", 3, 0xcfff},
    {"\xed\x80\x80", 3, 0xd000},    {"\xed\x9f\xbf", 3, 0xd7ff},
    {"\xee\x80\x80", 3, 0xe000},    {"\xef\xbf\xbf", 3, 0xffff},
    {"\xf0\x90\x80\x80", 4, 0x10000}, {"\xf0\xbf\xbf\xbf", 4, 0x3ffff},
    {"\xf1\x80\x80\x80", 4, 0x40000}, {"\xf3\xbf\xbf\xbf", 4, 0xfffff},
    {"\xf4\x80\x80\x80", 4, 0x100000}, {"\xf4\x8f\xbf\xbf", 4, 0x10ffff},
};

Test(utf8, every_row_of_the_well_formed_table)
{
	for (size_t i = 0; i < sizeof(well_formed) / sizeof(*well_formed); i++) {
		uint32_t cp = 0xffffffff;
		size_t bad = 99;
		const unsigned char *b = (const unsigned char *)well_formed[i].bytes;
		cr_assert_eq(utf8__seq(b, well_formed[i].len, &cp, &bad), well_formed[i].len,
			     "row %zu", i);
		cr_assert_eq(cp, well_formed[i].cp, "row %zu: U+%04X", i, cp);
		cr_assert(utf8__valid(well_formed[i].bytes, well_formed[i].len), "row %zu", i);
		/* One byte short is never well-formed (except the one-byte rows). */
		if (well_formed[i].len > 1) {
			cr_assert_eq(utf8__seq(b, well_formed[i].len - 1, NULL, &bad), 0);
			cr_assert_eq(bad, well_formed[i].len - 1, "row %zu", i);
		}
	}
}

/* Just outside each row: overlong forms, surrogates, beyond U+10FFFF, stray bytes. The maximal
 * subpart of each is what the table allows before the first byte out of its range. */
Test(utf8, just_outside_the_table_is_ill_formed)
{
	static const struct {
		const char *bytes;
		size_t len, bad;
	} v[] = {
	    {"\x80", 1, 1},		 {"\xbf", 1, 1},	     {"\xc0\x80", 2, 1},
	    {"\xc1\xbf", 2, 1},		 {"\xe0\x9f\xbf", 3, 1},     {"\xed\xa0\x80", 3, 1},
	    {"\xed\xbf\xbf", 3, 1},	 {"\xf0\x8f\xbf\xbf", 4, 1}, {"\xf4\x90\x80\x80", 4, 1},
	    {"\xf5\x80\x80\x80", 4, 1}, {"\xff", 1, 1},		     {"\xfe", 1, 1},
	    {"\xe2\x82", 2, 2},		 {"\xe2\x82\x41", 3, 2},     {"\xf0\x9f\x98", 3, 3},
	    {"\xc3\x41", 2, 1},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		size_t bad = 99;
		cr_assert_eq(utf8__seq((const unsigned char *)v[i].bytes, v[i].len, NULL, &bad), 0,
			     "vector %zu", i);
		cr_assert_eq(bad, v[i].bad, "vector %zu: subpart %zu", i, bad);
		cr_assert(!utf8__valid(v[i].bytes, v[i].len), "vector %zu", i);
	}
}

Test(utf8, valid_strings)
{
	cr_assert(utf8__valid("", 0));
	cr_assert(utf8__valid("plain ascii", 11));
	cr_assert(utf8__valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	cr_assert(!utf8__valid("caf\xc3\xa9 \xe2\x82", 8), "cut in a sequence");
	cr_assert(!utf8__valid("ok\xc3\xa9\xa9", 5), "stray continuation");
}

Test(utf8, names)
{
	char long_name[300];

	cr_assert(utf8__name_ok("10.42.0.130", 255));
	cr_assert(utf8__name_ok("caf\xc3\xa9", 255));
	cr_assert(!utf8__name_ok("", 255));
	cr_assert(!utf8__name_ok(NULL, 255));
	cr_assert(!utf8__name_ok("tab\there", 255));
	cr_assert(!utf8__name_ok("del\x7f", 255));
	cr_assert(!utf8__name_ok("bad\xff", 255));
	cr_assert(!utf8__name_ok("cut\xc3", 255));
	memset(long_name, 'a', sizeof(long_name));
	long_name[255] = '\0';
	cr_assert(utf8__name_ok(long_name, 255));
	long_name[255] = 'a';
	long_name[256] = '\0';
	cr_assert(!utf8__name_ok(long_name, 255));
	memcpy(long_name + 253, "\xc3\xa9", 3); /* 255 bytes, the last two one character */
	cr_assert(utf8__name_ok(long_name, 255));
	memcpy(long_name + 254, "\xc3\xa9", 3); /* 256 */
	cr_assert(!utf8__name_ok(long_name, 255));
}

/* ---- json_out: hand-written vectors -------------------------------------------------------- */

static char *to_stream(const char *s)
{
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	cr_assert_not_null(m);
	cr_assert_eq(json_out__fstr(m, s), 0);
	fclose(m);
	return out;
}

/* The literal through a textbuf with room to spare, NUL-terminated. */
static char *to_buf(const char *s)
{
	size_t room = JSON_OUT_MAX(strlen(s));
	char *out = malloc(room + 1);
	cr_assert_not_null(out);
	struct textbuf b = {out, out + room};
	json_out__str(&b, s);
	*b.p = '\0';
	return out;
}

static void expect_literal(const char *in, const char *want)
{
	char *a = to_stream(in), *b = to_buf(in);
	cr_assert_str_eq(a, want, "stream for input %zu bytes", strlen(in));
	cr_assert_str_eq(b, want, "buffer for input %zu bytes", strlen(in));
	free(a);
	free(b);
}

/* RFC 8259 section 7: quote, backslash and U+0000..U+001F must be escaped; nothing else. */
Test(json_out, rfc8259_escapes)
{
	expect_literal("", "\"\"");
	expect_literal("plain", "\"plain\"");
	expect_literal("a\"b", "\"a\\\"b\"");
	expect_literal("a\\b", "\"a\\\\b\"");
	expect_literal("/", "\"/\"");
	expect_literal("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
	expect_literal("\x01", "\"\\u0001\"");
	expect_literal("\x1f\x0b", "\"\\u001f\\u000b\"");
	expect_literal("del\x7f", "\"del\x7f\"");
	expect_literal(" ~", "\" ~\"");
}

Test(json_out, well_formed_utf8_passes)
{
	expect_literal("caf\xc3\xa9", "\"caf\xc3\xa9\"");
	expect_literal("\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xe2\x82\xac\xf0\x9f\x98\x80\"");
	expect_literal("\xe2\x80\xa8", "\"\xe2\x80\xa8\""); /* U+2028 is legal in JSON */
	expect_literal("\xc2\x80\xc2\x9f", "\"\xc2\x80\xc2\x9f\""); /* C1 controls are too */
	expect_literal("\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
}

/* The Unicode Standard's worked examples of U+FFFD substitution (chapter 3, Tables 3-8 to
 * 3-12), each replacement written out by hand. */
Test(json_out, ill_formed_bytes_become_fffd_per_maximal_subpart)
{
	expect_literal("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
		       "\"a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d\"");
	expect_literal("\xc0\xaf\xe0\x80\xbf\xf0\x81\x82\x41",
		       "\"" FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD "A\"");
	expect_literal("\xed\xa0\x80\xed\xbf\xbf\xed\xaf\x41",
		       "\"" FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD "A\"");
	expect_literal("\xf4\x91\x92\x93\xff\x41\x80\xbf\x42",
		       "\"" FFFD FFFD FFFD FFFD FFFD "A" FFFD FFFD "B\"");
	expect_literal("\xe1\x80\xe2\xf0\x91\x92\xf1\xbf\x41", "\"" FFFD FFFD FFFD FFFD "A\"");
	/* Escapes and replacements together. */
	expect_literal("a\"b\\c\n\x01\xff\xfe", "\"a\\\"b\\\\c\\n\\u0001" FFFD FFFD "\"");
}

/* A fixed-size field without its NUL, and one cut inside a character. */
Test(json_out, bounded_fields)
{
	char field[8], out[64];
	struct textbuf b = {out, out + sizeof(out)};

	memcpy(field, "abcdefgh", 8);
	json_out__strn(&b, field, sizeof(field));
	*b.p = '\0';
	cr_assert_str_eq(out, "\"abcdefgh\"");

	memcpy(field, "abcdefg\xc3", 8); /* the \xa9 that would follow is beyond the field */
	b = (struct textbuf){out, out + sizeof(out)};
	json_out__strn(&b, field, sizeof(field));
	*b.p = '\0';
	cr_assert_str_eq(out, "\"abcdefg" FFFD "\"");

	b = (struct textbuf){out, out + sizeof(out)};
	json_out__strn(&b, "ab\0cd", 5);
	*b.p = '\0';
	cr_assert_str_eq(out, "\"ab\"", "stops at the NUL");
}

/* With too little room the literal is cut between characters or escapes and still closed, so
 * it parses, and it reads back as a prefix of the whole string. */
Test(json_out, short_buffer_still_gives_a_whole_literal)
{
	const char *in = "ab\"\xc3\xa9\n\xe2\x82\xac\xff\x01z";
	char *full = to_stream(in);
	json_t *whole = json_loads(full, JSON_DECODE_ANY, NULL);
	cr_assert_not_null(whole);
	const char *want = json_string_value(whole);
	char out[64];

	for (size_t room = 0; room <= strlen(full) + 2; room++) {
		memset(out, 0, sizeof(out));
		struct textbuf b = {out, out + room};
		json_out__str(&b, in);
		size_t n = (size_t)(b.p - out);
		cr_assert_leq(n, room);
		if (room < 2) {
			cr_assert_eq(n, 0, "room %zu", room);
			continue;
		}
		json_error_t err;
		json_t *got = json_loads(out, JSON_DECODE_ANY, &err);
		cr_assert_not_null(got, "room %zu: %s: %s", room, out, err.text);
		const char *s = json_string_value(got);
		cr_assert_not_null(s);
		cr_assert_eq(strncmp(s, want, strlen(s)), 0, "room %zu: %s", room, s);
		if (room >= strlen(full))
			cr_assert_str_eq(out, full);
		json_decref(got);
	}
	json_decref(whole);
	free(full);
}

/* ---- json_out against Python's json module ------------------------------------------------- */

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* A random string (no NUL): ASCII, controls, quotes, 0x7f, well-formed characters of every
 * length, lone and cut sequences, bytes that never appear in UTF-8. */
static size_t random_string(unsigned char *s, size_t cap)
{
	size_t n = 0, want = next_rand() % 40;

	while (n < want && n + 4 < cap) {
		uint32_t r = next_rand(), cp;
		switch (r % 8) {
		case 0:
			s[n++] = (unsigned char)(0x20 + r / 8 % 95);
			break;
		case 1:
			s[n++] = (unsigned char)(1 + r / 8 % 31);
			break;
		case 2:
			s[n++] = "\"\\\x7f/"[r / 8 % 4];
			break;
		case 3:
			s[n++] = (unsigned char)(0x80 + r / 8 % 128);
			break;
		case 4: /* a well-formed character, any length */
			cp = r / 8 % 0x110000;
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd;
			if (cp == 0)
				cp = 0x41;
			if (cp < 0x80) {
				s[n++] = (unsigned char)cp;
			} else if (cp < 0x800) {
				s[n++] = (unsigned char)(0xc0 | cp >> 6);
				s[n++] = (unsigned char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				s[n++] = (unsigned char)(0xe0 | cp >> 12);
				s[n++] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
				s[n++] = (unsigned char)(0x80 | (cp & 0x3f));
			} else {
				s[n++] = (unsigned char)(0xf0 | cp >> 18);
				s[n++] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
				s[n++] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
				s[n++] = (unsigned char)(0x80 | (cp & 0x3f));
			}
			break;
		case 5: /* a lead byte with too few continuations */
			s[n++] = (unsigned char)(0xe0 + r / 8 % 21);
			if (r & 0x10000)
				s[n++] = (unsigned char)(0x80 + r / 4096 % 64);
			break;
		case 6:
			s[n++] = (unsigned char)(0xc0 + r / 8 % 64);
			break;
		default:
			s[n++] = (unsigned char)"\xed\xf4\xe0\xf0"[r / 8 % 4];
			s[n++] = (unsigned char)(0x80 + r / 32 % 64);
			break;
		}
	}
	s[n] = '\0';
	return n;
}

static void hex_line(FILE *f, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", s[i]);
	fputc('\n', f);
}

#define N_RANDOM 3000

Test(json_out, agrees_with_pythons_json_module)
{
	static const char script[] =
	    "import json, sys\n"
	    "with open(sys.argv[1]) as i, open(sys.argv[2], 'w') as o:\n"
	    "    for line in i:\n"
	    "        s = bytes.fromhex(line.strip()).decode('utf-8', 'replace')\n"
	    "        o.write(json.dumps(s, ensure_ascii=False).encode('utf-8').hex() + '\\n')\n";
	char dir[] = "/tmp/svcsensor-json-XXXXXX", in[64], out[64], py[64], cmd[256];
	static unsigned char s[N_RANDOM][200];
	size_t len[N_RANDOM];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(in, sizeof(in), "%s/in", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(py, sizeof(py), "%s/oracle.py", dir);
	FILE *f = fopen(py, "w");
	cr_assert_not_null(f);
	fputs(script, f);
	fclose(f);
	f = fopen(in, "w");
	cr_assert_not_null(f);
	for (size_t i = 0; i < N_RANDOM; i++) {
		len[i] = random_string(s[i], sizeof(s[i]));
		hex_line(f, s[i], len[i]);
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd), "python3 %s %s %s", py, in, out);
	cr_assert_eq(system(cmd), 0, "%s", cmd);

	f = fopen(out, "r");
	cr_assert_not_null(f);
	char line[2048];
	for (size_t i = 0; i < N_RANDOM; i++) {
		cr_assert_not_null(fgets(line, sizeof(line), f), "line %zu", i);
		char want[1024];
		size_t w = 0;
		for (char *h = line; h[0] && h[0] != '\n'; h += 2) {
			unsigned v;
			cr_assert_eq(sscanf(h, "%2x", &v), 1);
			want[w++] = (char)v;
		}
		want[w] = '\0';
		char *a = to_stream((const char *)s[i]), *b = to_buf((const char *)s[i]);
		cr_assert_str_eq(a, want, "string %zu (%zu bytes)", i, len[i]);
		cr_assert_str_eq(b, want, "string %zu (%zu bytes)", i, len[i]);
		cr_assert_leq(strlen(b), JSON_OUT_MAX(len[i]));
		free(a);
		free(b);
	}
	fclose(f);
	unlink(in);
	unlink(out);
	unlink(py);
	rmdir(dir);
}

/* SPDX-License-Identifier: MIT */
/*
 * json.h - a small streaming JSON writer: compact output, commas and nesting
 * tracked for the caller, strings escaped (control characters and invalid
 * UTF-8 as \u escapes).
 */
#ifndef TAKT_CLI_JSON_H
#define TAKT_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 16

struct json {
	FILE *f;
	int depth;
	bool first[JSON_DEPTH_MAX]; /* no element written yet at this level */
	bool after_key;             /* a key was written: the value needs no comma */
};

void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
/* An object member's key; the next value call writes its value. */
void json_key(struct json *j, const char *key);

void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const void *s, size_t n);
/* Bytes as a lowercase hex string. */
void json_hex(struct json *j, const void *data, size_t n);
void json_u64(struct json *j, uint64_t v);
void json_i64(struct json *j, int64_t v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

/* Shorthands: key and value. */
void json_kstr(struct json *j, const char *key, const char *s);
void json_ku64(struct json *j, const char *key, uint64_t v);
void json_ki64(struct json *j, const char *key, int64_t v);
void json_kdouble(struct json *j, const char *key, double v);
void json_kbool(struct json *j, const char *key, bool v);

/* Whether n bytes are valid UTF-8 (so json_strn writes them losslessly). */
bool json_is_utf8(const void *s, size_t n);
/* Bytes in the well-formed UTF-8 character at s (n > 0 bytes available),
 * or 0 if none starts there (no overlong forms, surrogates or values
 * above U+10FFFF). */
size_t utf8_len(const unsigned char *s, size_t n);

/* End of a top-level value: newline. */
void json_end_line(struct json *j);

#endif

/* A small streaming JSON writer: enough for statistics files. Commas are
 * handled by tracking whether the current container has members yet. */
#ifndef VIREO_UTIL_JSON_H
#define VIREO_UTIL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	int depth;
	int has_member[JSON_MAX_DEPTH];
	int error; /* nested deeper than JSON_MAX_DEPTH: output abandoned */
};

void json_init(struct json *j, FILE *f);
/* 0 if everything written so far is well-formed JSON. */
static inline int json_error(const struct json *j)
{
	return j->error;
}
void json_begin_object(struct json *j, const char *key);
void json_end_object(struct json *j);
void json_begin_array(struct json *j, const char *key);
void json_end_array(struct json *j);
void json_uint(struct json *j, const char *key, uint64_t v);
void json_string(struct json *j, const char *key, const char *s);
void json_bool(struct json *j, const char *key, bool v);

#endif

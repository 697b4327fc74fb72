/* A small streaming JSON writer (no parser: QMP input is parsed with
 * jansson): enough for statistics files. Commas are
 * handled by tracking whether the current container has members yet. */
#ifndef VIREO_UTIL_JSONW_H
#define VIREO_UTIL_JSONW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct jsonw {
	FILE *f;
	int depth;
	int has_member[JSON_MAX_DEPTH];
	int error; /* nested deeper than JSON_MAX_DEPTH: output abandoned */
};

void jsonw_init(struct jsonw *j, FILE *f);
/* 0 if everything written so far is well-formed JSON. */
static inline int jsonw_error(const struct jsonw *j)
{
	return j->error;
}
void jsonw_begin_object(struct jsonw *j, const char *key);
void jsonw_end_object(struct jsonw *j);
void jsonw_begin_array(struct jsonw *j, const char *key);
void jsonw_end_array(struct jsonw *j);
void jsonw_uint(struct jsonw *j, const char *key, uint64_t v);
void jsonw_string(struct jsonw *j, const char *key, const char *s);
void jsonw_bool(struct jsonw *j, const char *key, bool v);

#endif

/* "word,key=value,key=value" option strings, as QEMU and Cloud Hypervisor
 * device flags use them. Parsing splits a private copy in place. */
#ifndef VIREO_UTIL_KEYVAL_H
#define VIREO_UTIL_KEYVAL_H

#include <stdbool.h>

#define KEYVAL_MAX 16

struct keyval {
	const char *key;   /* "path"; for a bare word, the word */
	const char *value; /* NULL for a bare word */
};

/* Splits s (modified) at commas into at most max items; an empty item
 * ("a,,b", a trailing comma) is an error. Returns the count or -1. */
int keyval_split(char *s, struct keyval *kv, int max);
/* "on"/"off" (also yes/no, true/false, 1/0). 0, or -1 if neither. */
int keyval_bool(const char *value, bool *out);

#endif

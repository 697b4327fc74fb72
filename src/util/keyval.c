#include "util/keyval.h"

#include <string.h>

int keyval_split(char *s, struct keyval *kv, int max)
{
	int n = 0;

	for (;;) {
		char *comma = strchr(s, ',');
		char *eq;

		if (comma)
			*comma = 0;
		if (*s == 0 || n >= max)
			return -1;
		eq = strchr(s, '=');
		if (eq) {
			*eq = 0;
			if (eq == s)
				return -1; /* "=value" */
			kv[n].key = s;
			kv[n].value = eq + 1;
		} else {
			kv[n].key = s;
			kv[n].value = NULL;
		}
		n++;
		if (!comma)
			return n;
		s = comma + 1;
	}
}

int keyval_bool(const char *value, bool *out)
{
	static const char *const on[] = { "on", "yes", "true", "1" };
	static const char *const off[] = { "off", "no", "false", "0" };
	unsigned int i;

	if (!value)
		return -1;
	for (i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		if (!strcmp(value, on[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(value, off[i])) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

#include "util/jsonw.h"

void jsonw_init(struct jsonw *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->has_member[0] = 0;
	j->error = 0;
}

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Separator and key (keys are ignored inside arrays: pass NULL). */
static void member(struct jsonw *j, const char *key)
{
	if (j->has_member[j->depth])
		fputc(',', j->f);
	j->has_member[j->depth] = 1;
	if (j->depth > 0)
		fprintf(j->f, "\n%*s", 2 * j->depth, "");
	if (key) {
		put_string(j->f, key);
		fputs(": ", j->f);
	}
}

static void open_container(struct jsonw *j, const char *key, char c)
{
	if (j->error || j->depth >= JSON_MAX_DEPTH - 1) {
		j->error = 1; /* deeper than we can track: stop, don't lie */
		return;
	}
	if (j->depth > 0 || j->has_member[0])
		member(j, key);
	fputc(c, j->f);
	j->depth++;
	j->has_member[j->depth] = 0;
}

static void close_container(struct jsonw *j, char c)
{
	int had;

	if (j->error)
		return;
	had = j->has_member[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (had)
		fprintf(j->f, "\n%*s", 2 * j->depth, "");
	fputc(c, j->f);
	if (j->depth == 0)
		fputc('\n', j->f);
}

void jsonw_begin_object(struct jsonw *j, const char *key)
{
	open_container(j, key, '{');
}

void jsonw_end_object(struct jsonw *j)
{
	close_container(j, '}');
}

void jsonw_begin_array(struct jsonw *j, const char *key)
{
	open_container(j, key, '[');
}

void jsonw_end_array(struct jsonw *j)
{
	close_container(j, ']');
}

void jsonw_uint(struct jsonw *j, const char *key, uint64_t v)
{
	if (j->error)
		return;
	member(j, key);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void jsonw_string(struct jsonw *j, const char *key, const char *s)
{
	if (j->error)
		return;
	member(j, key);
	put_string(j->f, s);
}

void jsonw_bool(struct jsonw *j, const char *key, bool v)
{
	if (j->error)
		return;
	member(j, key);
	fputs(v ? "true" : "false", j->f);
}

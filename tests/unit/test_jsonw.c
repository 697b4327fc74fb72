#include "cmocka_prelude.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonw.h"

static char *out;
static size_t out_len;
static FILE *f;
static struct jsonw j;

static int setup(void **state)
{
	(void)state;
	out = NULL;
	out_len = 0;
	f = open_memstream(&out, &out_len);
	assert_non_null(f);
	jsonw_init(&j, f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (f)
		fclose(f);
	free(out);
	f = NULL;
	out = NULL;
	return 0;
}

static const char *text(void)
{
	fflush(f);
	return out;
}

static void test_nested(void **state)
{
	static const char expected[] =
		"{\n"
		"  \"name\": \"vi\\\"re\\\\o\\u000a\\u0001\\u001f end\",\n"
		"  \"max\": 18446744073709551615,\n"
		"  \"zero\": 0,\n"
		"  \"list\": [\n"
		"    1,\n"
		"    {\n"
		"      \"k\": \"v\"\n"
		"    },\n"
		"    []\n"
		"  ],\n"
		"  \"empty\": {},\n"
		"  \"tab\\u0009key\": \"\"\n"
		"}\n";

	(void)state;
	jsonw_begin_object(&j, NULL);
	jsonw_string(&j, "name", "vi\"re\\o\n\x01\x1f end");
	jsonw_uint(&j, "max", UINT64_MAX);
	jsonw_uint(&j, "zero", 0);
	jsonw_begin_array(&j, "list");
	jsonw_uint(&j, NULL, 1);
	jsonw_begin_object(&j, NULL);
	jsonw_string(&j, "k", "v");
	jsonw_end_object(&j);
	jsonw_begin_array(&j, NULL);
	jsonw_end_array(&j);
	jsonw_end_array(&j);
	jsonw_begin_object(&j, "empty");
	jsonw_end_object(&j);
	jsonw_string(&j, "tab\tkey", "");
	jsonw_end_object(&j);
	assert_string_equal(text(), expected);
}

static void test_empty_and_top_level(void **state)
{
	(void)state;
	jsonw_begin_object(&j, NULL);
	jsonw_end_object(&j);
	assert_string_equal(text(), "{}\n");
	jsonw_begin_array(&j, NULL);
	jsonw_uint(&j, NULL, 7);
	jsonw_uint(&j, NULL, 8);
	jsonw_end_array(&j);
	assert_string_equal(text(), "{}\n[\n  7,\n  8\n]\n");
}

static void test_escaping(void **state)
{
	(void)state;
	jsonw_begin_object(&j, NULL);
	/* Non-ASCII (UTF-8) and DEL pass through; every control char is
	 * escaped; "/" needs no escape. */
	jsonw_string(&j, "s", "caf\xc3\xa9 \x7f /\r\b");
	jsonw_string(&j, "\"", "\\\\");
	jsonw_end_object(&j);
	assert_string_equal(text(), "{\n"
				    "  \"s\": \"caf\xc3\xa9 \x7f /\\u000d\\u0008\",\n"
				    "  \"\\\"\": \"\\\\\\\\\"\n"
				    "}\n");
}

static void test_all_control_chars(void **state)
{
	char s[32], expected[32 * 6 + 32];
	int i;

	(void)state;
	for (i = 1; i < 32; i++)
		s[i - 1] = (char)i;
	s[31] = 0;
	jsonw_begin_array(&j, NULL);
	jsonw_string(&j, NULL, s);
	jsonw_end_array(&j);
	strcpy(expected, "[\n  \"");
	for (i = 1; i < 32; i++)
		sprintf(expected + strlen(expected), "\\u%04x", i);
	strcat(expected, "\"\n]\n");
	assert_string_equal(text(), expected);
}

/* Nesting up to what the writer tracks stays well-formed. */
static void test_deep_nesting(void **state)
{
	char expected[4096] = "";
	int i, n = JSON_MAX_DEPTH - 1; /* containers, including the outer one */

	(void)state;
	for (i = 0; i < n; i++)
		jsonw_begin_array(&j, NULL);
	jsonw_uint(&j, NULL, 42);
	for (i = 0; i < n; i++)
		jsonw_end_array(&j);
	for (i = 0; i < n; i++)
		sprintf(expected + strlen(expected), "%*s[\n", 2 * i, "");
	sprintf(expected + strlen(expected), "%*s42\n", 2 * n, "");
	for (i = n - 1; i >= 0; i--)
		sprintf(expected + strlen(expected), "%*s]\n", 2 * i, "");
	assert_string_equal(text(), expected);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_top_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_control_chars, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_nesting, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

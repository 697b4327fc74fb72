#include "cmocka_prelude.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "version.h"
#include "vmm/options.h"

/* options_parse may permute argv (GNU getopt), so each call gets a fresh
 * copy of the argument vector. */
#define PARSE(o, ...)                                                              \
	({                                                                         \
		char *argv_[] = { "vireo", __VA_ARGS__, NULL };                     \
		options_parse((int)ARRAY_LEN(argv_) - 1, argv_, (o));              \
	})

static void test_defaults(void **state)
{
	struct vm_options o;

	(void)state;
	memset(&o, 0xa5, sizeof(o));
	assert_int_equal(PARSE(&o, "--kernel", "bzImage"), OPTIONS_RUN);
	assert_string_equal(o.kernel, "bzImage");
	assert_null(o.initrd);
	assert_null(o.stats_json);
	assert_string_equal(o.cmdline, "console=ttyS0");
	assert_int_equal(o.memory, 256ULL << 20);
	assert_int_equal(o.cpus, 1);
	assert_false(o.reboot_reset); /* a guest reboot ends the VM */
}

static void test_every_option(void **state)
{
	struct vm_options o;

	(void)state;
	assert_int_equal(PARSE(&o, "--kernel", "k", "--initrd", "i.cpio", "--cmdline",
			       "console=ttyS0 quiet", "--memory", "2G", "--cpus", "4",
			       "--stats-json", "s.json"),
			 OPTIONS_RUN);
	assert_string_equal(o.kernel, "k");
	assert_string_equal(o.initrd, "i.cpio");
	assert_string_equal(o.cmdline, "console=ttyS0 quiet");
	assert_int_equal(o.memory, 2ULL << 30);
	assert_int_equal(o.cpus, 4);
	assert_string_equal(o.stats_json, "s.json");
	assert_int_equal(PARSE(&o, "--kernel", "k", "--reboot", "reset"), OPTIONS_RUN);
	assert_true(o.reboot_reset);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--reboot=reset", "--reboot=exit"), OPTIONS_RUN);
	assert_false(o.reboot_reset);

	/* "--opt=value" and unambiguous abbreviations, as getopt_long allows. */
	assert_int_equal(PARSE(&o, "--memory=512MiB", "--kernel=vmlinuz", "--cpu=2"),
			 OPTIONS_RUN);
	assert_int_equal(o.memory, 512ULL << 20);
	assert_string_equal(o.kernel, "vmlinuz");
	assert_int_equal(o.cpus, 2);

	/* The last occurrence wins; an empty command line is allowed. */
	assert_int_equal(PARSE(&o, "--kernel", "a", "--kernel", "b", "--cmdline", ""),
			 OPTIONS_RUN);
	assert_string_equal(o.kernel, "b");
	assert_string_equal(o.cmdline, "");
}

static void test_reparse_resets(void **state)
{
	struct vm_options o;

	(void)state;
	/* A failing parse followed by a good one: optind is reset and every
	 * field starts from its default again. */
	assert_int_equal(PARSE(&o, "--kernel", "k", "--memory", "1G", "--bogus"),
			 OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k2"), OPTIONS_RUN);
	assert_string_equal(o.kernel, "k2");
	assert_int_equal(o.memory, 256ULL << 20);
	assert_int_equal(PARSE(&o, "--kernel", "k3", "--cpus", "8"), OPTIONS_RUN);
	assert_int_equal(o.cpus, 8);
	assert_int_equal(PARSE(&o, "--kernel", "k4"), OPTIONS_RUN);
	assert_int_equal(o.cpus, 1);
	/* A parse that stopped inside a cluster of short options ("-xy"
	 * fails at x) leaves no half-read argument behind for the next. */
	assert_int_equal(PARSE(&o, "-xy"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k5"), OPTIONS_RUN);
	assert_string_equal(o.kernel, "k5");
}

static void test_bad_memory(void **state)
{
	struct vm_options o;

	(void)state;
	assert_int_equal(PARSE(&o, "--kernel", "k", "--memory", "0"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--memory", "0G"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--memory", "lots"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--memory", "12X"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--memory", "-1"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--memory", ""), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--memory", "99999999999T"), OPTIONS_USAGE);
}

static void test_bad_cpus(void **state)
{
	struct vm_options o;

	(void)state;
	assert_int_equal(PARSE(&o, "--kernel", "k", "--cpus", "0"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--cpus", "x"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--cpus", "-2"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--cpus", "2x"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--cpus", ""), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--cpus", "4294967296"), OPTIONS_USAGE);
}

static void test_usage_errors(void **state)
{
	struct vm_options o;
	char *only_name[] = { "vireo", NULL };

	(void)state;
	/* unknown options, long and short */
	assert_int_equal(PARSE(&o, "--kernel", "k", "--frobnicate"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "-x"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "-k", "bzImage"), OPTIONS_USAGE);
	/* ambiguous abbreviation: --c is --cmdline or --cpus */
	assert_int_equal(PARSE(&o, "--kernel", "k", "--c", "1"), OPTIONS_USAGE);
	/* an argument given to an option that takes none */
	assert_int_equal(PARSE(&o, "--kernel", "k", "--help=yes"), OPTIONS_USAGE);
	/* missing arguments */
	assert_int_equal(PARSE(&o, "--kernel"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--memory"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--cpus"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--initrd"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--reboot"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--reboot", "halt"), OPTIONS_USAGE);
	/* no kernel */
	assert_int_equal(options_parse(1, only_name, &o), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--memory", "1G"), OPTIONS_USAGE);
	/* stray positional arguments, before or after the options */
	assert_int_equal(PARSE(&o, "--kernel", "k", "extra"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "extra", "--kernel", "k"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--kernel", "k", "--", "--cpus"), OPTIONS_USAGE);
}

/* Runs options_parse with stdout captured into buf. */
static enum options_result parse_captured(char **argv, int argc, struct vm_options *o,
					  char *buf, size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDOUT_FILENO);
	enum options_result r;
	size_t n;

	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stdout);
	assert_true(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
	r = options_parse(argc, argv, o);
	fflush(stdout);
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, len - 1, tmp);
	buf[n] = 0;
	fclose(tmp);
	return r;
}

static void test_help_version(void **state)
{
	struct vm_options o;
	char out[4096];
	char *help[] = { "vireo", "--help", NULL };
	char *version[] = { "vireo", "--version", NULL };
	char *help_then_bad[] = { "vireo", "--help", "--bogus", NULL };
	char *kernel_then_version[] = { "vireo", "--kernel", "k", "--version", NULL };

	(void)state;
	assert_int_equal(parse_captured(help, 2, &o, out, sizeof(out)), OPTIONS_EXIT_OK);
	assert_non_null(strstr(out, "Usage: vireo --kernel FILE"));
	assert_non_null(strstr(out, "--memory SIZE"));
	assert_non_null(strstr(out, "(default \"console=ttyS0\")"));
	assert_int_equal(parse_captured(version, 2, &o, out, sizeof(out)), OPTIONS_EXIT_OK);
	assert_string_equal(out, "vireo " VIREO_VERSION "\n");
	/* Options are handled in order: --help stops before a bad option. */
	assert_int_equal(parse_captured(help_then_bad, 3, &o, out, sizeof(out)),
			 OPTIONS_EXIT_OK);
	assert_non_null(strstr(out, "Usage:"));
	assert_int_equal(parse_captured(kernel_then_version, 4, &o, out, sizeof(out)),
			 OPTIONS_EXIT_OK);
	assert_string_equal(out, "vireo " VIREO_VERSION "\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_option),
		cmocka_unit_test(test_reparse_resets),
		cmocka_unit_test(test_bad_memory),
		cmocka_unit_test(test_bad_cpus),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_help_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

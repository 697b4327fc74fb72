/* The command line, parsed into a plain struct. Kept free of KVM so it can
 * be unit tested: limits that depend on the host (memory, KVM's vCPU limit)
 * are checked later, when the machine is assembled. */
#ifndef VIREO_VMM_OPTIONS_H
#define VIREO_VMM_OPTIONS_H

#include <stdint.h>

#define VIREO_DEFAULT_MEMORY (256ULL << 20)
#define VIREO_DEFAULT_CMDLINE "console=ttyS0"

struct vm_options {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	const char *stats_json;
	uint64_t memory;
	unsigned int cpus;
};

enum options_result {
	OPTIONS_RUN,	 /* boot a VM */
	OPTIONS_EXIT_OK, /* --help or --version printed; exit 0 */
	OPTIONS_USAGE,	 /* bad command line, message printed; exit 2 */
};

enum options_result options_parse(int argc, char **argv, struct vm_options *o);
void options_print_help(void);

#endif

#include "vmm/options.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "hw/piix_ide.h"
#include "util/log.h"
#include "util/size.h"
#include "version.h"

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEMORY, OPT_CPUS,
       OPT_STATS_JSON, OPT_DISK, OPT_NET, OPT_CONSOLE, OPT_RNG, OPT_NO_IOEVENTFD,
       OPT_CAN, OPT_QMP, OPT_REBOOT, OPT_INCOMING, OPT_HELP, OPT_VERSION, OPT_PAUSED };

static const struct option long_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "stats-json", required_argument, NULL, OPT_STATS_JSON },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "can", required_argument, NULL, OPT_CAN },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "no-ioeventfd", no_argument, NULL, OPT_NO_IOEVENTFD },
	{ "qmp", required_argument, NULL, OPT_QMP },
	{ "reboot", required_argument, NULL, OPT_REBOOT },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "paused", no_argument, NULL, OPT_PAUSED },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

void options_print_help(void)
{
	printf("Usage: vireo --kernel FILE [OPTION]...\n"
	       "       vireo canbus PATH [--socketcan IFNAME [--fd]]   (a Vireo CAN bus hub)\n"
	       "       vireo ctl SOCKET COMMAND [JSON-ARGUMENTS]        (one QMP command)\n"
	       "Boot a Linux bzImage in a KVM virtual machine; the guest's serial\n"
	       "console (COM1) is this terminal.\n"
	       "\n"
	       "  --kernel FILE        Linux bzImage to boot (required)\n"
	       "  --initrd FILE        initial ramdisk\n"
	       "  --cmdline STRING     kernel command line (default \"%s\")\n"
	       "  --memory SIZE        guest RAM, e.g. 512M, 2G or bytes (default 256M)\n"
	       "  --cpus N             number of vCPUs (default 1)\n"
	       "  --stats-json FILE    on exit (and on SIGUSR2), write KVM and device statistics\n"
	       "  --disk path=FILE|nbd=URI|rbd=POOL/IMAGE[,conf=FILE][,id=USER]\n"
	       "         [,format=raw|qcow2][,readonly=on][,serial=STR]\n"
	       "         [,snapshot=on][,cache=none|writeback][,engine=uring|threads]\n"
	       "         [,l2-cache-size=SIZE][,if=virtio|ide]\n"
	       "                       virtio-blk disk (repeatable: vda, vdb...) on an image\n"
	       "                       file, an NBD export (nbd://HOST[:PORT]/EXPORT,\n"
	       "                       nbd+unix:///EXPORT?socket=PATH) or a Ceph RBD\n"
	       "                       image (conf=ceph.conf, id=client id); without\n"
	       "                       format= a qcow2 image is recognised, but may not\n"
	       "                       have a backing file; snapshot=on: writes go to a\n"
	       "                       temporary overlay, gone at exit; if=ide: an emulated\n"
	       "                       IDE disk instead (PIIX3, up to four: sda, sdb...)\n"
	       "  --net tap=IFNAME[,mac=MAC][,model=virtio|e1000]\n"
	       "  --net user[,hostfwd=tcp:HOSTPORT-:GUESTPORT][,mac=MAC][,model=virtio|e1000]\n"
	       "                       a NIC on a tap interface or on user-mode networking\n"
	       "                       (repeatable): virtio-net, or an emulated Intel 82540EM\n"
	       "  --console serial|virtio\n"
	       "                       guest console on the 8250 (ttyS0, default) or on\n"
	       "                       virtio-console (hvc0)\n"
	       "  --can socketcan=IFNAME[,fd=on][,log=FILE][,model=virtio|kvaser]\n"
	       "  --can bus=PATH[,fd=on][,log=FILE][,model=virtio|kvaser]\n"
	       "                       virtio-can controller on a host SocketCAN interface\n"
	       "                       or on a Vireo CAN bus (see: vireo canbus --help);\n"
	       "                       log=FILE writes the traffic in candump -L format;\n"
	       "                       model=kvaser: an emulated Kvaser PCI card (SJA1000)\n"
	       "  --rng                virtio-rng, fed from the host's getrandom()\n"
	       "  --qmp unix:PATH[,server=on][,wait=on|off]\n"
	       "                       QMP control socket (QEMU's protocol: stop, cont,\n"
	       "                       query-status, system_powerdown, quit...); wait=on\n"
	       "                       (the default, as QEMU's) starts the guest once a\n"
	       "                       client connects\n"
	       "  --reboot exit|reset  what a reboot from inside the guest does: end the VM\n"
	       "                       (exit, the default) or reset it and boot again\n"
	       "  --incoming file:PATH start from a snapshot (QMP migrate to file:PATH)\n"
	       "  --incoming tcp:ADDR:PORT  wait for a live migration (QMP migrate to tcp:)\n"
	       "                       instead of booting; the other options must be the\n"
	       "                       ones the snapshot's VM was started with\n"
	       "  -S, --paused         do not start the vCPUs until QMP cont (QEMU's -S);\n"
	       "                       with --incoming, the VM waits after it came in\n"
	       "  --no-ioeventfd       queue notifications exit to userspace (slow path,\n"
	       "                       for measuring the difference)\n"
	       "  --help               show this help and exit\n"
	       "  --version            show the version and exit\n"
	       "\n"
	       "On a terminal, type Ctrl-A x to stop the VM, Ctrl-A Ctrl-A to send Ctrl-A.\n"
	       "Exit status: 0 guest powered off or rebooted (--reboot exit), or stopped by a\n"
	       "signal, Ctrl-A x or QMP quit; 1 runtime failure (KVM error, guest crash);\n"
	       "2 usage error.\n",
	       VIREO_DEFAULT_CMDLINE);
}

enum options_result options_parse(int argc, char **argv, struct vm_options *o)
{
	bool cmdline_given = false;
	int c;

	memset(o, 0, sizeof(*o));
	o->memory = VIREO_DEFAULT_MEMORY;
	o->cpus = 1;
	o->cmdline = VIREO_DEFAULT_CMDLINE;

	opterr = 0;  /* we print our own one-line messages */
	optind = 0;  /* full reset, so the parser can run more than once */
	while ((c = getopt_long(argc, argv, ":S", long_options, NULL)) != -1) {
		switch (c) {
		case 'S':
		case OPT_PAUSED:
			o->start_paused = true;
			break;
		case OPT_KERNEL:
			o->kernel = optarg;
			break;
		case OPT_INITRD:
			o->initrd = optarg;
			break;
		case OPT_CMDLINE:
			o->cmdline = optarg;
			cmdline_given = true;
			break;
		case OPT_STATS_JSON:
			o->stats_json = optarg;
			break;
		case OPT_MEMORY:
			if (parse_size(optarg, &o->memory) || o->memory == 0) {
				log_error("--memory: invalid size '%s' (use e.g. 512M, 2G or a byte count)",
					  optarg);
				return OPTIONS_USAGE;
			}
			if (o->memory % 4096) {
				log_error("--memory: %s is not a whole number of 4 KiB pages", optarg);
				return OPTIONS_USAGE;
			}
			break;
		case OPT_CPUS:
			if (parse_uint(optarg, &o->cpus) || o->cpus == 0) {
				log_error("--cpus: invalid vCPU count '%s' (must be a number >= 1)", optarg);
				return OPTIONS_USAGE;
			}
			break;
		case OPT_DISK:
			if (o->ndisks >= VIREO_MAX_DISKS) {
				log_error("--disk: at most %d disks", VIREO_MAX_DISKS);
				return OPTIONS_USAGE;
			}
			if (parse_disk_option(optarg, &o->disk[o->ndisks]) < 0)
				return OPTIONS_USAGE;
			if (o->disk[o->ndisks].ide && ++o->nide_disks > PIIX_IDE_MAX_DISKS) {
				log_error("--disk '%s': at most %d IDE disks (primary and secondary, master "
					  "and slave)", optarg, PIIX_IDE_MAX_DISKS);
				return OPTIONS_USAGE;
			}
			o->ndisks++;
			break;
		case OPT_NET:
			if (o->nnets >= VIREO_MAX_NICS) {
				log_error("--net: at most %d network interfaces", VIREO_MAX_NICS);
				return OPTIONS_USAGE;
			}
			if (parse_net_option(optarg, o->nnets, &o->net[o->nnets]) < 0)
				return OPTIONS_USAGE;
			o->nnets++;
			break;
		case OPT_CAN:
			if (o->ncans >= VIREO_MAX_CANS) {
				log_error("--can: at most %d CAN controllers", VIREO_MAX_CANS);
				return OPTIONS_USAGE;
			}
			if (parse_can_option(optarg, &o->can[o->ncans]) < 0)
				return OPTIONS_USAGE;
			o->ncans++;
			break;
		case OPT_CONSOLE:
			if (parse_console_option(optarg, &o->console) < 0)
				return OPTIONS_USAGE;
			break;
		case OPT_RNG:
			o->rng = true;
			break;
		case OPT_NO_IOEVENTFD:
			o->no_ioeventfd = true;
			break;
		case OPT_QMP:
			if (parse_qmp_option(optarg, o) < 0)
				return OPTIONS_USAGE;
			break;
		case OPT_REBOOT:
			if (!strcmp(optarg, "reset")) {
				o->reboot_reset = true;
			} else if (!strcmp(optarg, "exit")) {
				o->reboot_reset = false;
			} else {
				log_error("--reboot '%s': must be exit or reset", optarg);
				return OPTIONS_USAGE;
			}
			break;
		case OPT_INCOMING:
			if ((strncmp(optarg, "file:", 5) && strncmp(optarg, "tcp:", 4)) ||
			    !optarg[optarg[0] == 'f' ? 5 : 4]) {
				log_error("--incoming '%s': must be file:PATH (a snapshot file) or "
					  "tcp:ADDR:PORT (a live migration)", optarg);
				return OPTIONS_USAGE;
			}
			o->incoming = optarg;
			break;
		case OPT_HELP:
			options_print_help();
			return OPTIONS_EXIT_OK;
		case OPT_VERSION:
			printf("vireo %s\n", VIREO_VERSION);
			return OPTIONS_EXIT_OK;
		case ':':
			log_error("option '%s' needs an argument", argv[optind - 1]);
			return OPTIONS_USAGE;
		default:
			/* Inside a group of short options optind has not moved on. */
			if (optopt)
				log_error("unknown option '-%c' (see vireo --help)", optopt);
			else
				log_error("unknown option '%s' (see vireo --help)", argv[optind - 1]);
			return OPTIONS_USAGE;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s' (see vireo --help)", argv[optind]);
		return OPTIONS_USAGE;
	}
	/* The 8250 keeps the early messages; hvc0 appears when the guest loads
	 * virtio_console and takes over without repeating them. */
	if (!cmdline_given && o->console == CONSOLE_VIRTIO)
		o->cmdline = VIREO_VIRTIO_CONSOLE_CMDLINE;
	if (!o->kernel) {
		log_error("no kernel given: use --kernel FILE (see vireo --help)");
		return OPTIONS_USAGE;
	}
	return OPTIONS_RUN;
}

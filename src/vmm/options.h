/* The command line, parsed into a plain struct. Kept free of KVM so it can
 * be unit tested: limits that depend on the host (memory, KVM's vCPU limit)
 * are checked later, when the machine is assembled. */
#ifndef VIREO_VMM_OPTIONS_H
#define VIREO_VMM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "can/can.h"
#include "net/net.h"

#define VIREO_DEFAULT_MEMORY (256ULL << 20)
#define VIREO_DEFAULT_CMDLINE "console=ttyS0"
#define VIREO_VIRTIO_CONSOLE_CMDLINE "earlycon=uart8250,io,0x3f8 console=hvc0"

#define VIREO_MAX_DISKS 8
#define VIREO_MAX_NICS 4
#define VIREO_MAX_CANS 4
#define OPTION_ARG_MAX 1024 /* longest device option string */
#define VIRTIO_BLK_SERIAL_MAX 20 /* VIRTIO_BLK_ID_BYTES */

/* --disk path=FILE|nbd=URI[,format=raw|qcow2][,readonly=on][,serial=STR][,cache=none|writeback]
 *        [,engine=uring|threads][,l2-cache-size=SIZE][,if=virtio|ide] */
struct disk_config {
	char arg[OPTION_ARG_MAX]; /* private copy the fields point into */
	struct block_options block;
	const char *serial; /* NULL: none */
	bool ide;	    /* if=ide: a disk of the emulated PIIX3 IDE controller */
};

/* --net tap=IFNAME[,mac=MAC][,model=M] | --net user[,hostfwd=RULE]...[,mac=MAC][,model=M] */
enum net_model {
	NET_MODEL_VIRTIO, /* virtio-net on virtio-pci */
	NET_MODEL_E1000,  /* an emulated Intel 82540EM (hw/e1000.h) */
};

struct net_config {
	char arg[OPTION_ARG_MAX];
	struct net_options net;
	uint8_t mac[6];
	enum net_model model;
};

/* --can socketcan=IFNAME[,fd=on][,log=FILE][,model=virtio|kvaser] |
 * --can bus=PATH[,fd=on][,log=FILE][,model=virtio|kvaser] */
enum can_model { CAN_MODEL_VIRTIO, CAN_MODEL_KVASER };
struct can_config {
	char arg[OPTION_ARG_MAX];
	struct can_options can;
	enum can_model model;
};

enum console_kind { CONSOLE_SERIAL, CONSOLE_VIRTIO };

struct vm_options {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	const char *stats_json;
	/* --qmp unix:PATH: the control socket ("" when none); wait=on: the
	 * guest starts once a client is there. 108: sun_path's size. */
	char qmp_path[108];
	bool qmp_wait;
	/* -S / --paused: the vCPUs do not run until QMP cont (QEMU's -S). */
	bool start_paused;
	uint64_t memory;
	unsigned int cpus;
	struct disk_config disk[VIREO_MAX_DISKS];
	unsigned int ndisks;
	unsigned int nide_disks; /* of them, if=ide */
	struct net_config net[VIREO_MAX_NICS];
	unsigned int nnets;
	struct can_config can[VIREO_MAX_CANS];
	unsigned int ncans;
	enum console_kind console;
	bool rng;
	bool no_ioeventfd; /* queue notifications exit to userspace (slow path) */
	bool reboot_reset; /* --reboot reset: a guest reboot resets the VM in place */
	/* --incoming file:PATH (start from this snapshot instead of booting)
	 * or tcp:ADDR:PORT (from a live migration); NULL: boot. */
	const char *incoming;
};

enum options_result {
	OPTIONS_RUN,	 /* boot a VM */
	OPTIONS_EXIT_OK, /* --help or --version printed; exit 0 */
	OPTIONS_USAGE,	 /* bad command line, message printed; exit 2 */
};

enum options_result options_parse(int argc, char **argv, struct vm_options *o);
void options_print_help(void);

/* Device option strings (src/vmm/device_options.c). Each logs one line
 * naming the problem and returns -1 on bad input. index numbers the
 * device, for its default MAC address. */
int parse_disk_option(const char *arg, struct disk_config *d);
int parse_net_option(const char *arg, unsigned int index, struct net_config *n);
int parse_console_option(const char *arg, enum console_kind *out);
/* --qmp unix:PATH[,server=on][,wait=on|off]; QEMU's syntax. */
int parse_qmp_option(const char *arg, struct vm_options *o);
int parse_can_option(const char *arg, struct can_config *c);

#endif

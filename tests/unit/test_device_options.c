/* The device flags: --disk, --net, --can, --console and their errors. */
#include "cmocka_prelude.h"

#include <arpa/inet.h>
#include <string.h>

#include "net/hostfwd.h"
#include "util/keyval.h"
#include "vmm/options.h"

#define PARSE(o, ...)                                                              \
	({                                                                         \
		char *argv_[] = { "vireo", "--kernel", "k", __VA_ARGS__, NULL };    \
		options_parse((int)ARRAY_LEN(argv_) - 1, argv_, (o));              \
	})

static struct vm_options o;

static void test_disks(void **state)
{
	(void)state;
	assert_int_equal(PARSE(&o, "--disk", "path=a.img", "--disk",
			       "path=/x/b.img,readonly=on,serial=SN1,cache=none"),
			 OPTIONS_RUN);
	assert_int_equal(o.ndisks, 2);
	assert_string_equal(o.disk[0].block.path, "a.img");
	assert_false(o.disk[0].block.read_only);
	assert_null(o.disk[0].serial);
	assert_int_equal(o.disk[0].block.cache, BLOCK_CACHE_WRITEBACK);
	assert_string_equal(o.disk[1].block.path, "/x/b.img");
	assert_true(o.disk[1].block.read_only);
	assert_string_equal(o.disk[1].serial, "SN1");
	assert_int_equal(o.disk[1].block.cache, BLOCK_CACHE_NONE);

	assert_int_equal(PARSE(&o, "--disk", "readonly=on"), OPTIONS_USAGE); /* no path */
	assert_int_equal(PARSE(&o, "--disk", "path=x,bogus=1"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--disk", "path=x,readonly=maybe"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--disk", "path=x,cache=unsafe"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--disk", "path=x,serial=123456789012345678901"),
			 OPTIONS_USAGE); /* 21 > 20 bytes */
	assert_int_equal(PARSE(&o, "--disk", "path="), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--disk", "path=x,,readonly=on"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--disk", "x.img"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--disk", ""), OPTIONS_USAGE);
}

static void test_too_many_disks(void **state)
{
	char *argv[3 + 2 * (VIREO_MAX_DISKS + 1) + 1] = { "vireo", "--kernel", "k" };
	int i, n = 3;

	(void)state;
	for (i = 0; i <= VIREO_MAX_DISKS; i++) {
		argv[n++] = "--disk";
		argv[n++] = "path=x";
	}
	argv[n] = NULL;
	assert_int_equal(options_parse(n, argv, &o), OPTIONS_USAGE);
}

static void test_nets(void **state)
{
	(void)state;
	assert_int_equal(PARSE(&o, "--net", "tap=tap0", "--net",
			       "user,hostfwd=tcp:2222-:22,hostfwd=udp:127.0.0.1:5353-:53,mac=02:00:00:aa:bb:cc"),
			 OPTIONS_RUN);
	assert_int_equal(o.nnets, 2);
	assert_int_equal(o.net[0].net.kind, NET_TAP);
	assert_string_equal(o.net[0].net.ifname, "tap0");
	assert_memory_equal(o.net[0].mac, "\x52\x54\x00\x12\x34\x56", 6);
	assert_int_equal(o.net[1].net.kind, NET_USER);
	assert_int_equal(o.net[1].net.nhostfwd, 2);
	assert_string_equal(o.net[1].net.hostfwd[0], "tcp:2222-:22");
	assert_memory_equal(o.net[1].mac, "\x02\x00\x00\xaa\xbb\xcc", 6);

	assert_int_equal(PARSE(&o, "--net", "foo"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--net", "tap="), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--net", "tap=name-longer-than-15"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--net", "user,hostfwd=bad"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--net", "tap=t0,hostfwd=tcp:1-:2"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--net", "user,mac=01:00:00:00:00:01"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--net", "user,mac=52:54:00:12:34"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--net", "user,mac=52-54-00-12-34-56"), OPTIONS_USAGE);

	/* model=: virtio (the default) or e1000, on either backend. */
	assert_int_equal(PARSE(&o, "--net", "tap=t0,model=e1000", "--net", "user,model=virtio",
			       "--net", "user"),
			 OPTIONS_RUN);
	assert_int_equal(o.net[0].model, NET_MODEL_E1000);
	assert_int_equal(o.net[1].model, NET_MODEL_VIRTIO);
	assert_int_equal(o.net[2].model, NET_MODEL_VIRTIO);
	assert_int_equal(PARSE(&o, "--net", "user,model=rtl8139"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--net", "user,model="), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--net", "user,model"), OPTIONS_USAGE);
}

static void test_hostfwd_rules(void **state)
{
	struct hostfwd f;

	(void)state;
	assert_int_equal(hostfwd_parse("tcp:8080-:80", &f), 0);
	assert_false(f.udp);
	assert_int_equal(f.host_port, 8080);
	assert_int_equal(f.guest_port, 80);
	assert_int_equal(f.host_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(f.guest_addr.s_addr, 0);
	assert_int_equal(hostfwd_parse("udp:0.0.0.0:53-10.0.2.15:5353", &f), 0);
	assert_true(f.udp);
	assert_int_equal(f.host_addr.s_addr, 0);
	assert_int_equal(f.guest_addr.s_addr, htonl(0x0a00020f));
	assert_int_equal(hostfwd_parse("tcp::2222-:22", &f), 0);
	assert_int_equal(f.host_port, 2222);

	assert_int_equal(hostfwd_parse("sctp:1-:2", &f), -1);
	assert_int_equal(hostfwd_parse("tcp:0-:22", &f), -1);
	assert_int_equal(hostfwd_parse("tcp:65536-:22", &f), -1);
	assert_int_equal(hostfwd_parse("tcp:22-:", &f), -1);
	assert_int_equal(hostfwd_parse("tcp:22:22", &f), -1);
	assert_int_equal(hostfwd_parse("tcp:1.2.3:22-:22", &f), -1);
	assert_int_equal(hostfwd_parse("tcp:22-:22-", &f), -1);
	assert_int_equal(hostfwd_parse("tcp:+22-:22", &f), -1);
}

static void test_cans(void **state)
{
	(void)state;
	assert_int_equal(PARSE(&o, "--can", "socketcan=vcan0,fd=on,log=/tmp/c.log", "--can",
			       "bus=/run/bus.sock"),
			 OPTIONS_RUN);
	assert_int_equal(o.ncans, 2);
	assert_int_equal(o.can[0].can.kind, CAN_SOCKETCAN);
	assert_string_equal(o.can[0].can.ifname, "vcan0");
	assert_true(o.can[0].can.fd);
	assert_string_equal(o.can[0].can.log, "/tmp/c.log");
	assert_int_equal(o.can[1].can.kind, CAN_BUS);
	assert_string_equal(o.can[1].can.path, "/run/bus.sock");
	assert_false(o.can[1].can.fd);
	assert_null(o.can[1].can.log);
	assert_int_equal(o.can[0].model, CAN_MODEL_VIRTIO);
	assert_int_equal(o.can[1].model, CAN_MODEL_VIRTIO);
	assert_int_equal(PARSE(&o, "--can", "socketcan=vcan0,model=kvaser", "--can",
			       "bus=/b,model=virtio,fd=on"),
			 OPTIONS_RUN);
	assert_int_equal(o.can[0].model, CAN_MODEL_KVASER);
	assert_int_equal(o.can[1].model, CAN_MODEL_VIRTIO);
	assert_int_equal(PARSE(&o, "--can", "bus=x,model=sja1000"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--can", "bus=x,model="), OPTIONS_USAGE);
	/* The SJA1000 has no CAN FD. */
	assert_int_equal(PARSE(&o, "--can", "bus=x,model=kvaser,fd=on"), OPTIONS_USAGE);

	assert_int_equal(PARSE(&o, "--can", "vcan0"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--can", "socketcan="), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--can", "bus=x,fd=maybe"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--can", "bus=x,speed=1"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--can", "bus=x,log="), OPTIONS_USAGE);
}

static void test_console_rng_ioeventfd(void **state)
{
	(void)state;
	assert_int_equal(PARSE(&o, "--rng"), OPTIONS_RUN);
	assert_true(o.rng);
	assert_false(o.no_ioeventfd);
	assert_int_equal(o.console, CONSOLE_SERIAL);
	assert_string_equal(o.cmdline, VIREO_DEFAULT_CMDLINE);

	/* virtio console: hvc0 by default, the 8250 for early messages. */
	assert_int_equal(PARSE(&o, "--console", "virtio", "--no-ioeventfd"), OPTIONS_RUN);
	assert_int_equal(o.console, CONSOLE_VIRTIO);
	assert_true(o.no_ioeventfd);
	assert_string_equal(o.cmdline, VIREO_VIRTIO_CONSOLE_CMDLINE);
	/* ... unless the user gave a command line. */
	assert_int_equal(PARSE(&o, "--console", "virtio", "--cmdline", "console=hvc0 quiet"),
			 OPTIONS_RUN);
	assert_string_equal(o.cmdline, "console=hvc0 quiet");

	assert_int_equal(PARSE(&o, "--console", "vga"), OPTIONS_USAGE);
	assert_int_equal(PARSE(&o, "--rng=yes"), OPTIONS_USAGE);
}

static void test_keyval(void **state)
{
	struct keyval kv[KEYVAL_MAX];
	char s[] = "user,a=1,b=,c=x=y";
	char t[64];
	bool b;

	(void)state;
	assert_int_equal(keyval_split(s, kv, KEYVAL_MAX), 4);
	assert_string_equal(kv[0].key, "user");
	assert_null(kv[0].value);
	assert_string_equal(kv[2].value, "");
	assert_string_equal(kv[3].value, "x=y");
	strcpy(t, "a,b,c");
	assert_int_equal(keyval_split(t, kv, 2), -1); /* too many */
	strcpy(t, "=v");
	assert_int_equal(keyval_split(t, kv, 2), -1);
	strcpy(t, "a,");
	assert_int_equal(keyval_split(t, kv, 2), -1);
	assert_int_equal(keyval_bool("on", &b), 0);
	assert_true(b);
	assert_int_equal(keyval_bool("off", &b), 0);
	assert_false(b);
	assert_int_equal(keyval_bool("On", &b), -1);
	assert_int_equal(keyval_bool(NULL, &b), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disks),
		cmocka_unit_test(test_too_many_disks),
		cmocka_unit_test(test_nets),
		cmocka_unit_test(test_hostfwd_rules),
		cmocka_unit_test(test_cans),
		cmocka_unit_test(test_console_rng_ioeventfd),
		cmocka_unit_test(test_keyval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

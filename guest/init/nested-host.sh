#!/bin/sh
# /etc/init.sh of the nested host, run by the generic /init as PID 1
# (busybox sh) after proc, sysfs, devtmpfs and the modules (9p, kvm_amd...)
# are up. tests/nested/run boots it under QEMU TCG with two 9p shares:
#   hostroot  the real host's / (read-only), mounted at /host
#   out       a fresh writable temp dir of the caller, holding:
#     params  shell variables for us: share (its path on the real host),
#             interactive (0/1), rows, cols, rw_paths (extra writable
#             shares rw0, rw1... in order, newline-separated)
#     cmd.sh  the command, run with the host's /bin/sh after chroot /host:
#             sets the caller's environment, cds to its cwd, execs CMD
#     status  written here: CMD's exit status
#     error   written here instead when the nested host cannot run CMD
# Then we power off; QEMU exits and tests/nested/run returns the status.
# No "set -e": this is PID 1, and its death is a kernel panic; failures
# go through fail(), which reports them and powers off.

# CMD's output and ours go to ttyS0; the kernel's console is ttyS1 (its
# log, see tests/nested/run). What we say goes to the log too.
say() {
	echo "nested host: $*" >/dev/ttyS0
	echo "nested host: $*" >/dev/kmsg 2>/dev/null
}
# vireo.trace on the kernel command line (VIREO_NESTED_APPEND=vireo.trace):
# print the uptime at each step, to see where boot time goes.
# vireo.9pcache=MODE: the 9p cache mode of the host's / (default loose).
trace() { :; }
hostcache=loose ktrace=1
for arg in $(cat /proc/cmdline); do
	case $arg in
	vireo.trace) trace() { read -r up _ </proc/uptime; say "$up s: $*"; } ;;
	vireo.9pcache=*) hostcache=${arg#*=} ;;
	vireo.ktrace=*) ktrace=${arg#*=} ;;
	esac
done
trace "modules loaded, init.sh starts"
fail() {
	say "$*"
	[ -d /out ] && echo "$*" >/out/error
	sync
	poweroff -f
}

# 9p: version 9p2000.L for POSIX semantics; a big msize for fewer round
# trips (512000 is the most virtio allows). The read-only host root is
# cached (cache=loose: 2-7x faster than mmap or none for exec, imports,
# directory walks; it does not change under a test run in a way that
# matters); the writable shares are not (default cache=none: what is
# written there must reach the host before poweroff).
p9="trans=virtio,version=9p2000.L,msize=512000"

mkdir -p /out /host
mount -t 9p -o "$p9" out /out || fail "cannot mount the 9p share 'out' (virtio_pci/9p modules missing?)"
[ -f /out/params ] || fail "no params file in the 9p share 'out'"
share='' interactive=0 rows='' cols='' rw_paths=''
# shellcheck disable=SC1091 # written by tests/nested/run
. /out/params

# Where this kernel keeps jiffies, for tests/nested/qmp-dump: jiffies_64
# and _text as the kernel maps them, and the physical start of its code
# (so KASLR or not, jiffies_64 - _text + that is its physical address).
# QEMU's registers of a vCPU in guest mode are the nested guest's, so
# only L1's own clock going on (read from physical memory) tells a nested
# host that is alive from one spinning with interrupts off.
j=$(grep -m1 ' jiffies_64$' /proc/kallsyms) t=$(grep -m1 ' _text$' /proc/kallsyms)
k=$(grep -m1 ' : Kernel code$' /proc/iomem)
echo "${j%% *} ${t%% *} ${k%%-*}" >/out/l1-jiffies

if [ ! -c /dev/kvm ]; then
	fail "/dev/kvm is missing: kvm_amd did not load. CPUs with svm: $(grep -cw svm /proc/cpuinfo)." \
		"Kernel: $(dmesg | grep -i -e kvm -e svm | tail -n 3 | tr '\n' ' ')"
fi

mount -t 9p -o "ro,$p9,cache=$hostcache" hostroot /host ||
	fail "cannot mount the host's / (9p share 'hostroot')"
trace "9p shares mounted"

# The chroot's kernel file systems; /dev from devtmpfs so /dev/kvm is there.
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /host/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
ln -sf /proc/self/fd /host/dev/fd
ln -sf /proc/self/fd/0 /host/dev/stdin
ln -sf /proc/self/fd/1 /host/dev/stdout
ln -sf /proc/self/fd/2 /host/dev/stderr

# KVM's trace events into L1's trace buffer (a ring of the last few
# thousand per CPU): every guest exit with its reason and RIP, every
# exception KVM injects. When a guest stalls or triple-faults, the tail of
# /sys/kernel/tracing/trace says what its vCPUs did last (the e2e tests
# print it on failure, the failed VMM's events apart: tests/e2e/diag.py).
# Costs little next to what an exit costs under TCG. vireo.ktrace=0 turns
# it off.
if [ "$ktrace" = 1 ] && mount -t tracefs tracefs /host/sys/kernel/tracing 2>/dev/null; then
	t=/host/sys/kernel/tracing
	echo 512 >$t/buffer_size_kb
	# Each event names its process (TGID) too, so that a failure report
	# shows the failed VM's events, not those of the VMs beside it.
	echo 1 >$t/options/record-tgid
	for e in kvm_exit kvm_inj_exception kvm_userspace_exit kvm_set_irq kvm_msi_set_irq; do
		echo 1 >$t/events/kvm/$e/enable 2>/dev/null
	done
	echo 1 >$t/tracing_on
fi

# Writable /tmp and /run in memory. /tmp is an overlay over the host's /tmp
# (not a bare tmpfs) so that a caller working in /tmp (a CI clone there,
# say) finds its files: reads fall through to the host, writes stay here.
mkdir -p /run/tmp
mount -t tmpfs -o mode=755 tmpfs /run/tmp
mkdir -p /run/tmp/upper /run/tmp/work
chmod 1777 /run/tmp/upper
if ! mount -t overlay -o lowerdir=/host/tmp,upperdir=/run/tmp/upper,workdir=/run/tmp/work \
	overlay /host/tmp 2>/dev/null; then
	mount -t tmpfs -o mode=1777 tmpfs /host/tmp
fi
mount -t tmpfs -o mode=755 tmpfs /host/run

# The writable share at the path it has on the real host, so that paths in
# the command (and in cmd.sh) mean the same inside and out.
mkdir -p "/host$share" 2>/dev/null
mount --bind /out "/host$share" || fail "cannot bind the share at $share"
i=0
while IFS= read -r path; do
	[ -n "$path" ] || continue
	mount -t 9p -o "$p9" "rw$i" "/host$path" || fail "cannot mount the writable share of $path"
	i=$((i + 1))
done <<EOF
$rw_paths
EOF

trace "all mounted"
ip link set lo up 2>/dev/null
hostname vireo-nested

# CMD's terminal: ttyS0 (a controlling tty must be a real tty, which
# /dev/console, here the kernel log on ttyS1, is not).
tty=/dev/ttyS0

trace "running the command"
# env -i: the command gets exactly the environment cmd.sh sets.
if [ "$interactive" = 1 ]; then
	# The caller's terminal is raw (QEMU): this tty does the line
	# discipline; Ctrl-C arrives as a byte and becomes SIGINT here.
	stty -F "$tty" sane ${rows:+rows "$rows"} ${cols:+cols "$cols"} 2>/dev/null
	setsid -c env -i /usr/sbin/chroot /host /bin/sh "$share/cmd.sh" <"$tty" >"$tty" 2>&1
else
	# No echo, and no NL -> CR NL: the caller gets the bytes as written.
	stty -F "$tty" -echo -onlcr 2>/dev/null
	setsid env -i /usr/sbin/chroot /host /bin/sh "$share/cmd.sh" </dev/null >"$tty" 2>&1
fi
echo $? >/out/status
trace "command done"
sync
poweroff -f

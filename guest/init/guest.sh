# /etc/init.sh of the test/demo guest, run by the generic /init as PID 1
# (busybox sh) once proc, sysfs, devtmpfs and the virtio modules are there.
#
# vireo.mode=bench on the kernel command line: print VIREO-BENCH-MARKER and
# power off at once (the boot benchmark times kernel start to this line).
# Otherwise: print VIREO-GUEST-UP with what the guest sees (the e2e tests
# check it), then hand PID 1 to busybox init, which runs a root shell with
# job control on the console (ttyS0 or hvc0) and, like a real init, powers
# off or reboots the machine when told to: plain `poweroff` and `reboot`
# work, not only their -f forms.

read -r cmdline </proc/cmdline
case " $cmdline " in
*" vireo.mode=bench "*)
	# Only shell built-ins before the marker: nothing else to time.
	echo VIREO-BENCH-MARKER >/dev/console
	poweroff -f
	;;
esac

# MemTotal with the built-in read: no fork.
mem_kb=
while read -r key value _; do
	[ "$key" = MemTotal: ] && { mem_kb=$value; break; }
done </proc/meminfo
echo "VIREO-GUEST-UP cpus=$(nproc) mem_kb=$mem_kb time=$(date +%s)" >/dev/console

# cttyhack makes the real console device (found through
# /sys/class/tty/console/active) the shell's controlling tty: /dev/console
# cannot be one, and without it there is no job control and Ctrl-C does
# nothing. init starts each entry in a new session; a shell that exits is
# started again, as on a real console.
cat >/etc/inittab <<'TAB'
::respawn:/bin/cttyhack /bin/sh -l
::shutdown:/bin/sync
TAB
export PS1='vireo# ' HOME=/root TERM=${TERM:-linux}
mkdir -p /root
cd /root
exec /bin/busybox init

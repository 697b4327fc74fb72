#!/bin/sh
# /etc/init.sh of the test/demo guest, run by the generic /init as PID 1
# (busybox sh) once proc, sysfs, devtmpfs and the virtio modules are there.
#
# vireo.mode=bench on the kernel command line: print VIREO-BENCH-MARKER and
# power off at once (the boot benchmark times kernel start to this line).
# Otherwise: print VIREO-GUEST-UP with what the guest sees (the e2e tests
# check it), then a root shell with job control on the console, and power
# off when it exits. Works with the console on ttyS0 or hvc0. Plain
# poweroff/reboot/halt typed in the shell work too (the /etc/linuxrc
# helper of the generic /init, see guest/mkinitramfs).
# No "set -e": this is PID 1, and its death is a kernel panic.

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

# setsid: a new session, so that cttyhack can make the real console device
# (ttyS0, hvc0; found through /sys/class/tty/console/active) the controlling
# tty: /dev/console itself cannot be one, and without a controlling tty
# there is no job control and Ctrl-C does nothing.
export PS1='vireo# ' HOME=/root TERM=${TERM:-linux}
cd /root || cd /
setsid cttyhack sh -l
poweroff -f

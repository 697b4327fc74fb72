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
#
# Networking is configured only when asked, so that boots without a NIC
# pay nothing for it:
#   vireo.net=dhcp            eth0 by DHCP (busybox udhcpc, with
#                             /usr/share/udhcpc/default.script: address,
#                             default route, /etc/resolv.conf)
#   vireo.net=ADDR/LEN[,GW]   eth0 with a static address (and default route)
# Either prints "VIREO-NET-UP eth0 ADDR/LEN" or "VIREO-NET-FAILED why"
# before VIREO-GUEST-UP.
# No "set -e": this is PID 1, and its death is a kernel panic.

read -r cmdline </proc/cmdline
case " $cmdline " in
*" vireo.mode=bench "*)
	# Only shell built-ins before the marker: nothing else to time.
	echo VIREO-BENCH-MARKER >/dev/console
	poweroff -f
	;;
esac

net=
for arg in $cmdline; do
	case $arg in vireo.net=*) net=${arg#vireo.net=} ;; esac
done
if [ -n "$net" ]; then
	ip link set lo up
	# The NIC's driver probed when /init loaded virtio_net; give udev-less
	# sysfs a moment anyway.
	n=0
	while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 20 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	netok=
	if [ ! -e /sys/class/net/eth0 ]; then
		netwhy="no eth0 (no virtio-net device?)"
	elif [ "$net" = dhcp ]; then
		# 4 discovers 1 s apart (udhcpc -T, -t); -n: give up, -q: quit
		# once bound (the address stays).
		ip link set eth0 up
		if timeout 15 udhcpc -i eth0 -n -q -t 4 -T 1 >/tmp/udhcpc.log 2>&1; then
			netok=1
		else
			netwhy="no DHCP lease: $(tail -n 1 /tmp/udhcpc.log)"
		fi
	else
		addr=${net%%,*} gw=
		[ "$addr" = "$net" ] || gw=${net#*,}
		if ip addr add "$addr" dev eth0 && ip link set eth0 up &&
		   { [ -z "$gw" ] || ip route add default via "$gw"; }; then
			netok=1
		else
			netwhy="cannot configure eth0 as $net"
		fi
	fi
	if [ -n "$netok" ]; then
		set -- $(ip -4 -o addr show dev eth0)
		echo "VIREO-NET-UP eth0 $4" >/dev/console
	else
		echo "VIREO-NET-FAILED $netwhy" >/dev/console
	fi
fi

# The ACPI power button (QMP system_powerdown): a clean poweroff, as
# systemd-logind or acpid would do it. The button driver's input device
# delivers an event on a press; the first one ends the guest. (evdev
# refuses reads shorter than one struct input_event: 24 bytes.)
for ev in /sys/class/input/event*; do
	read -r name <"$ev/device/name" 2>/dev/null || continue
	[ "$name" = "Power Button" ] || continue
	( head -c 24 "/dev/${ev#/sys/class/}" >/dev/null 2>&1 &&
	  echo VIREO-POWER-BUTTON >/dev/console && sync && poweroff -f ) &
	break
done

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

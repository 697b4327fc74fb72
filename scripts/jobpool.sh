# shellcheck shell=bash
# Sourced by scripts/run-unit and scripts/run-fuzz: a pool of background
# jobs, so many at a time.

# jobpool_size VAR WHO: the pool's size from the environment variable VAR
# (default: one per CPU), or exits with status 2 naming WHO if it is not a
# positive number.
jobpool_size() {
	local n=${!1:-$(nproc 2>/dev/null || echo 1)}
	case $n in
	'' | *[!0-9]* | 0) echo "$2: $1 must be a positive number, not '$n'" >&2; exit 2 ;;
	esac
	echo "$n"
}

# jobpool_wait N: returns once fewer than N background jobs run.
jobpool_wait() {
	while [ "$(jobs -rp | wc -l)" -ge "$1" ]; do
		wait -n
	done
}

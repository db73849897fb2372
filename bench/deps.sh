#!/usr/bin/env bash
# Installs what `make bench` needs on a fresh Debian machine (wrk and the peers: Caddy, nginx,
# HAProxy; FastAPI and uvicorn for the example backend; with BENCH_PERF=1, perf; with
# BENCH_OVERLOAD=1, only nginx, HAProxy, FastAPI and uvicorn) and does nothing on a machine that has
# them. Like .ci/deps: apt-get as root, or through sudo -n.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# make bench-overload (BENCH_OVERLOAD=1) needs neither wrk nor Caddy.
if [ "${BENCH_OVERLOAD:-}" != 1 ]; then
	command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
	command -v caddy >/dev/null 2>&1 || need_apt+=(caddy)
fi
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
/usr/bin/python3 -c 'import fastapi, uvicorn' >/dev/null 2>&1 || need_apt+=(python3-fastapi python3-uvicorn)
# make bench-profile (BENCH_PERF=1) also needs Linux perf.
if [ "${BENCH_PERF:-}" = 1 ]; then command -v perf >/dev/null 2>&1 || need_apt+=(linux-perf); fi

if [ ${#need_apt[@]} -gt 0 ]; then
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
			sudo=(sudo -n)
		else
			echo "bench/deps.sh: missing ${need_apt[*]}; install them as root (apt-get install ${need_apt[*]})" >&2
			exit 1
		fi
	fi
	echo "bench/deps.sh: apt-get install ${need_apt[*]}" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# Debian's nginx and haproxy packages may start their system services on install; the
	# bench never uses them (it runs its own instances on free loopback ports).
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

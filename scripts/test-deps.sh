#!/usr/bin/env bash
# Installs what greypit's tests (and scripts/run.sh) need from Debian's
# packages when it is missing: postfix (postfix, postconf, postqueue),
# swaks with the Perl modules it needs for IPv6 and TLS, and dig (dnsutils,
# the DNS client of the DNSBL zone test), redis-server (the shared store's
# tests start private instances of it on loopback), plus
# ca-certificates. Idempotent: when everything is there it
# installs nothing and does not touch apt. Needs root to install; without
# root it says what is missing and exits 1.
#
# With arguments it checks only those commands (e.g. `test-deps.sh postfix`).
#
# Postfix is preseeded to "No configuration", so the package does not set up
# or start the system Postfix on port 25: internal/testenv starts private
# instances of its own on loopback ports, and run.sh its demo backend.
#
# postgrey (the policy server greypit replaces) and db_dump (db-util) are
# for the policy server's drop-in test and importer; the package's
# postgrey service is not started (no systemd in tests; the tests run
# /usr/sbin/postgrey themselves on a loopback port).
#
# haproxy is the load balancer of the PROXY protocol test (testenv runs
# private instances from temp configs; the package's default config binds
# no SMTP port). promtool (package prometheus) lints greypit's /metrics in
# the metrics test; on a systemd host the package also enables a
# Prometheus server on :9090, which the tests do not use
# (`systemctl disable --now prometheus` if unwanted).
#
# chromium is the real browser the dashboard test drives (chromedp,
# headless, --no-sandbox as root); the test starts a private instance with
# its own profile directory.
set -euo pipefail

# command -> Debian package. A name with "::" is a Perl module: swaks needs
# IO::Socket::INET6 for IPv6 and Net::SSLeay/IO::Socket::SSL for STARTTLS,
# which Debian only recommends, so --no-install-recommends leaves them out.
declare -A pkg_of=(
	[postfix]=postfix
	[postconf]=postfix
	[postqueue]=postfix
	[swaks]=swaks
	[IO::Socket::INET6]=libio-socket-inet6-perl
	[Net::SSLeay]=libnet-ssleay-perl
	[IO::Socket::SSL]=libio-socket-ssl-perl
	[dig]=dnsutils
	[redis-server]=redis-server
	[redis-cli]=redis-tools
	[haproxy]=haproxy
	[promtool]=prometheus
	[postgrey]=postgrey
	[db_dump]=db-util
	[chromium]=chromium
)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(postfix postconf postqueue swaks IO::Socket::INET6 Net::SSLeay IO::Socket::SSL dig redis-server redis-cli postgrey db_dump haproxy promtool chromium)

# present reports whether a command (or, for a name with "::", a Perl
# module) is installed.
present() {
	case "$1" in
	*::*) perl -M"$1" -e 1 >/dev/null 2>&1 ;;
	*) PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1 ;;
	esac
}

missing=()
for cmd in "${want[@]}"; do
	pkg=${pkg_of[$cmd]:-$cmd}
	if present "$cmd"; then
		continue
	fi
	echo "test-deps.sh: $cmd is missing (package $pkg)"
	case " ${missing[*]-} " in
	*" $pkg "*) ;;
	*) missing+=("$pkg") ;;
	esac
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "test-deps.sh: all present: ${want[*]}"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "test-deps.sh: missing ${missing[*]}; install them as root, e.g.:" >&2
	echo "  sudo $0 ${*}" >&2
	echo "or:" >&2
	echo "  echo 'postfix postfix/main_mailer_type select No configuration' | sudo debconf-set-selections" >&2
	echo "  sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]} ca-certificates" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps.sh: missing ${missing[*]} and no apt-get here; install them with your package manager" >&2
	exit 1
fi

run() {
	echo "test-deps.sh: + $*"
	"$@"
}

# "No configuration": the system Postfix must not be configured or started
# on port 25 by the package install.
echo "test-deps.sh: + debconf-set-selections <<< 'postfix postfix/main_mailer_type select No configuration'"
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
run apt-get update -qq
run apt-get install -y -qq --no-install-recommends "${missing[@]}" ca-certificates </dev/null

still=()
for cmd in "${want[@]}"; do
	present "$cmd" || still+=("$cmd")
done
if [ ${#still[@]} -gt 0 ]; then
	echo "test-deps.sh: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "test-deps.sh: installed ${missing[*]}"

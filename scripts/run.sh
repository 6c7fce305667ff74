#!/usr/bin/env bash
# Runs greypit's main job, `greypit serve`, on its embedded defaults in
# front of an MTA: port 25 on all addresses, state in /var/lib/greypit,
# backend 127.0.0.1:10025 told the client's address by a PROXY v2 header.
#
# If nothing answers on 127.0.0.1:10025, a private demo Postfix is set up
# there (its own config, queue and log under /var/lib/greypit-demo; it
# delivers mail for example.test and localhost into a maildir) and stopped
# again when greypit exits. Extra arguments go to `greypit serve`, e.g.
#   ./scripts/run.sh -set smtp.listen=127.0.0.1:2525
set -euo pipefail
cd "$(dirname "$0")/.."

demo=/var/lib/greypit-demo
conf=$demo/postfix/etc

backend_up() { (exec 3<>/dev/tcp/127.0.0.1/10025) 2>/dev/null; }

start_demo_backend() {
	scripts/test-deps.sh postfix
	local pfuser nobody_uid nobody_gid
	nobody_uid=$(id -u nobody 2>/dev/null || echo 65534)
	nobody_gid=$(id -g nobody 2>/dev/null || echo 65534)
	mkdir -p "$conf" "$demo/postfix/queue" "$demo/postfix/data" "$demo/mail"
	chmod 755 "$demo" "$demo/postfix"
	chown postfix:postfix "$demo/postfix/data"
	chown "$nobody_uid:$nobody_gid" "$demo/mail"
	cat >"$conf/main.cf" <<MAIN
# Demo backend for greypit (scripts/run.sh). Not for production.
compatibility_level = 3.6
config_directory = $conf
queue_directory = $demo/postfix/queue
data_directory = $demo/postfix/data
maillog_file = $demo/postfix/maillog
maillog_file_prefixes = $demo
myhostname = backend.greypit-demo
mydestination =
inet_interfaces = loopback-only
inet_protocols = all
mynetworks = 127.0.0.0/8 [::1]/128
alias_maps =
alias_database =
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = example.test, localhost
virtual_mailbox_base = $demo/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:$nobody_uid
virtual_gid_maps = static:$nobody_gid
MAIN
	cat >"$conf/master.cf" <<'MASTER'
# Demo backend: its smtpd expects greypit's PROXY v2 header.
127.0.0.1:10025 inet n - n - - smtpd
  -o smtpd_upstream_proxy_protocol=haproxy
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
virtual    unix  - n n -     - virtual
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
MASTER
	postfix -c "$conf" start
	for _ in $(seq 1 100); do backend_up && break; sleep 0.1; done
	backend_up || { echo "run.sh: the demo Postfix did not start; see $demo/postfix/maillog" >&2; exit 1; }
	echo "run.sh: demo Postfix listening on 127.0.0.1:10025 (PROXY v2); mail lands in $demo/mail/box/new"
	trap 'postfix -c "$conf" stop >/dev/null 2>&1 || true' EXIT
}

command -v go >/dev/null || { echo "run.sh: Go is required (go1.26 or newer)" >&2; exit 1; }
backend_up || start_demo_backend
mkdir -p "$demo"
CGO_ENABLED=0 go build -o "$demo/greypit" ./cmd/greypit
echo "run.sh: starting greypit serve $*"
# In the background so that INT/TERM reach greypit (it drains sessions)
# and the demo backend is stopped after it exits.
"$demo/greypit" serve "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM
status=0
wait "$pid" || status=$?
if kill -0 "$pid" 2>/dev/null; then wait "$pid" || status=$?; fi
exit "$status"

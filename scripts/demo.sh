#!/bin/sh
# demo.sh - show bpfwrap on the example policy in examples/: check it, then
# decide a few clients the way tcpdmatch would (no root, no DNS).
set -eu
BIN=${1:-build/bpfwrap}
cd "$(dirname "$0")/.."
A=examples/hosts.allow D=examples/hosts.deny
run() { echo "\$ bpfwrap $*"; "$BIN" "$@" || true; echo; }
run check --allow $A --deny $D
run match --allow $A --deny $D --no-dns sshd 203.0.113.7
run match --allow $A --deny $D --no-dns sshd 198.51.100.9
run match --allow $A --deny $D --no-dns nginx 198.51.100.200
run match --allow $A --deny $D --no-dns nginx 198.51.100.9
printf 'sshd 192.0.2.1 - - -\nsshd 10.0.0.1 - - -\nhttpd ::ffff:198.51.100.1 - - -\n' > /tmp/bpfwrap-demo-queries.$$
echo "\$ bpfwrap match --batch --allow $A --deny $D < queries"
cat /tmp/bpfwrap-demo-queries.$$ | sed 's/^/  query: /'
"$BIN" match --batch --allow $A --deny $D < /tmp/bpfwrap-demo-queries.$$
rm -f /tmp/bpfwrap-demo-queries.$$

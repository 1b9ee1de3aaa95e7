#!/bin/sh
# bounce-pipe.sh CONNINFO WORKSPACE [PSQL]
#
# Feeds one returned message (on standard input, as an MTA's pipe delivers
# it) to broadcast.record_bounce_message().  For Postfix, in master.cf:
#
#   bouncepipe unix - n n - - pipe flags=DORq user=nobody
#     argv=/usr/local/bin/bounce-pipe.sh postgresql://bounces@db.internal/app acme
#
# (a URI needs no spaces, which master.cf arguments cannot hold) and route the
# bounce domain to it in transport_maps (docs/providers/smtp.md).  The role
# should be a member of broadcast_webhook and nothing else.  Exit codes follow sysexits(3):
# 75 (EX_TEMPFAIL) when the database cannot be reached or refuses the call, so
# the MTA keeps the message and tries again later; 0 once it is recorded (an
# unattributed message is counted in broadcast.bounce_intake, not refused).
set -u
if [ $# -lt 2 ]; then
	echo "usage: bounce-pipe.sh CONNINFO WORKSPACE [PSQL]" >&2
	exit 64
fi
conninfo=$1
workspace=$2
psql=${3:-psql}
# at most 2 MB are read by the function; more is cut here rather than refused
raw=$(head -c 2097152 | base64 -w 0) || exit 75
# the message goes through standard input (an argument is limited to 128 kB);
# base64 has no quote, so it is a safe literal
printf "SELECT kind FROM broadcast.record_bounce_message(:'ws', decode('%s', 'base64'));\n" "$raw" |
	"$psql" -X -q -A -t -v ON_ERROR_STOP=1 -v ws="$workspace" "$conninfo" >/dev/null || exit 75
exit 0

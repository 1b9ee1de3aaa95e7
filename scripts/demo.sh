#!/usr/bin/env bash
# The main job: on a fresh Debian 12 machine (as root), start a local
# PostgreSQL 15 with broadcast_engine and pg_cron preloaded and a local mail
# sink with a web inbox (maildev), load a workspace of 10,000 contacts,
# send a personalised broadcast end to end through the sender workers,
# show its progress live, then print the stats and where to read the mail.
#
#   scripts/demo.sh              keeps the cluster and inbox up until Ctrl-C
#   DEMO_EXIT=1 scripts/demo.sh  stops everything when the broadcast is done
#
# The HTTP edge serves the unsubscribe links of the messages: click one in the
# inbox and the reader is unsubscribed.
#
# Ports (loopback only): PostgreSQL 55440, SMTP 1025, web inbox 1080, edge 8080.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
PORT=${DEMO_PORT:-55440}
SMTP_PORT=${DEMO_SMTP_PORT:-1025}
WEB_PORT=${DEMO_WEB_PORT:-1080}
CONTACTS=${DEMO_CONTACTS:-10000}
EDGE_PORT=${DEMO_EDGE_PORT:-8080}

echo "==> installing what is needed (apt, npm)"
"$ROOT/scripts/install-deps.sh"
PGBIN=$(pg_config --bindir)
mkdir -p "$ROOT/.work"
if [ ! -x "$ROOT/.work/maildev/node_modules/.bin/maildev" ]; then
	npm install --silent --no-audit --no-fund --prefix "$ROOT/.work/maildev" maildev@3 >/dev/null
fi

echo "==> building and installing broadcast_engine"
make -s >/dev/null && make -s install >/dev/null

DEMO=$(mktemp -d /tmp/be-demo.XXXXXX)
chown postgres "$DEMO"
MAILDEV_PID=
cleanup() {
	[ -n "$MAILDEV_PID" ] && kill "$MAILDEV_PID" 2>/dev/null || true
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DEMO/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$DEMO"
}
trap cleanup EXIT

echo "==> starting the mail sink (maildev): SMTP 127.0.0.1:$SMTP_PORT, inbox http://127.0.0.1:$WEB_PORT"
"$ROOT/.work/maildev/node_modules/.bin/maildev" --ip 127.0.0.1 --smtp "$SMTP_PORT" --web "$WEB_PORT" \
	--silent >"$DEMO/maildev.log" 2>&1 &
MAILDEV_PID=$!

echo "==> starting PostgreSQL on 127.0.0.1:$PORT with broadcast_engine and pg_cron preloaded"
runuser -u postgres -- "$PGBIN/initdb" -D "$DEMO/data" -A trust -U postgres --no-sync >/dev/null
cat >>"$DEMO/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DEMO'
shared_preload_libraries = 'broadcast_engine,pg_cron'
broadcast_engine.database = 'newsletter'
cron.database_name = 'newsletter'
broadcast_engine.sender_workers = 2
# maildev speaks plain SMTP on loopback
broadcast_engine.allow_insecure_transport = on
broadcast_engine.allow_private_endpoints = on
# the HTTP edge: unsubscribe links, webhooks, /metrics (docs/edge.md)
broadcast_engine.http_listen = '127.0.0.1:$EDGE_PORT'
shared_buffers = '256MB'
CONF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DEMO/data" -l "$DEMO/postgres.log" -w start >/dev/null
PSQL=(psql -h 127.0.0.1 -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE newsletter" >/dev/null

for _ in $(seq 1 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null && break
	sleep 0.2
done

echo "==> loading a workspace with $CONTACTS contacts and scheduling a broadcast"
"${PSQL[@]}" -d newsletter <<SQL >/dev/null
CREATE EXTENSION broadcast_engine;
SELECT broadcast.create_workspace('demo', 'Demo Weekly', 'Europe/Paris', '{
	"sending_domain": "news.demo.test", "unsubscribe_base_url": "http://127.0.0.1:$EDGE_PORT/u",
	"default_from_email": "weekly@demo.test", "default_from_name": "Demo Weekly"}');
SELECT broadcast.create_list('demo', 'weekly', 'Weekly digest');
INSERT INTO broadcast.contacts (workspace_id, email, first_name, last_name, language, properties)
SELECT 'demo', 'reader' || i || '@example.com',
	   (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Niklaus'])[1 + i % 8],
	   'Reader ' || i, (ARRAY['en', 'fr'])[1 + i % 2],
	   jsonb_build_object('plan', (ARRAY['free', 'pro'])[1 + (i % 5 = 0)::int], 'visits', i % 40)
  FROM generate_series(1, $CONTACTS) i;
INSERT INTO broadcast.list_members (workspace_id, list_id, email)
SELECT 'demo', 'weekly', 'reader' || i || '@example.com' FROM generate_series(1, $CONTACTS) i;
SELECT broadcast.create_template('demo', 'digest',
	'{{ contact.first_name }}, your week in review',
	\$tpl\$<html><body style="font-family: sans-serif">
<h1>Hello {{ contact.first_name | escape }}!</h1>
{% if contact.plan == "pro" %}<p>Thank you for being a <b>Pro</b> reader.</p>
{% else %}<p>You are on the free plan. <a href="https://demo.test/upgrade">Upgrade</a> any time.</p>{% endif %}
<p>You visited us {{ contact.visits }} times this month.</p>
<ul>{% for n in (1..3) %}<li>Story {{ forloop.index }} of {{ workspace.name | escape }}</li>{% endfor %}</ul>
<p style="font-size: small"><a href="{{ unsubscribe_url }}">Unsubscribe</a> from {{ list.name }}.</p>
</body></html>\$tpl\$);
SELECT broadcast.create_integration('demo', 'maildev', 'smtp',
	'{"host": "127.0.0.1", "port": $SMTP_PORT, "tls": "none", "ehlo_name": "demo.test"}', rate_per_second => 2000);
SELECT broadcast.create_broadcast('demo', 'week-48', 'Week 48 digest', ARRAY['weekly'], 'maildev',
								  template_id => 'digest');
SELECT broadcast.schedule_broadcast('demo', 'week-48');
SQL

echo "==> sending (progress from broadcast.progress)"
printf '%-10s %-10s %8s %8s %8s %7s %9s %s\n' status phase total sent failed percent rate/s eta
while true; do
	line=$("${PSQL[@]}" -d newsletter -At -F ' ' -c "
		SELECT status, coalesce(phase, '-'), total, sent, failed, coalesce(percent, 0),
			   coalesce(rate_per_second, 0), coalesce(to_char(eta, 'HH24:MI:SS'), '-')
		  FROM broadcast.progress WHERE workspace_id = 'demo' AND broadcast_id = 'week-48'")
	if [ -z "$line" ]; then
		break
	fi
	# shellcheck disable=SC2086
	printf '%-10s %-10s %8s %8s %8s %6s%% %9s %s\n' $line
	sleep 1
done

echo "==> done"
"${PSQL[@]}" -d newsletter -c "SELECT broadcast_id, status, total_recipients, sent_count, failed_count,
	completed_at - started_at AS took FROM broadcast.broadcasts WHERE workspace_id = 'demo'"
"${PSQL[@]}" -d newsletter -c "SELECT * FROM broadcast.broadcast_stats('demo', 'week-48')"
echo "Read the messages in the web inbox: http://127.0.0.1:$WEB_PORT"
for _ in $(seq 1 50); do
	curl -sf -o /dev/null "http://127.0.0.1:$EDGE_PORT/metrics" && break
	sleep 0.2
done
echo "Their unsubscribe links work: the edge serves them at http://127.0.0.1:$EDGE_PORT/u/..."
echo "  (click one, confirm, and the reader leaves the list; metrics: http://127.0.0.1:$EDGE_PORT/metrics)"
echo "Query the database:                 psql -h 127.0.0.1 -p $PORT -U postgres newsletter"
if [ "${DEMO_EXIT:-0}" = 1 ] || [ ! -t 0 ]; then
	exit 0
fi
echo "Press Ctrl-C to stop PostgreSQL and the mail sink."
while true; do sleep 3600; done

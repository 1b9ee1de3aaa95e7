"""Bounces for SMTP senders, with a real Postfix (issue 15).

The engine sends through a private Postfix instance on loopback (its own
config, queue and data directories in a temporary folder; the system
Postfix is never used).  Postfix relays dead.example.test to a second
smtpd listener of the same instance that refuses nobody@dead.example.test
with 550 5.1.1, so Postfix itself writes a real DSN to the message's VERP
return path.  transport_maps sends the bounce domain to a pipe(8) service
that runs scripts/bounce-pipe.sh, which calls
broadcast.record_bounce_message() as a role that is only broadcast_webhook.
A second address is refused with 452 4.2.2 and Postfix, allowed one
attempt, returns it at once: a soft bounce.  A feedback-loop complaint
(ARF) mailed through Postfix to a message's VERP address is the third
returned message.  Checked: the envelope sender is the VERP address, the
refused address ends up suppressed as a hard bounce, the full mailbox
counts a soft bounce, the complainer is suppressed, and the next
broadcast leaves both suppressed addresses out.  Every
wait polls for a state with a deadline.

Runs as root (Postfix's master must), as CI does.
"""
import os
import re
import shutil
import subprocess
import tempfile

from belib import DB, IS_ROOT, PGBIN, ROOT, Cluster, wait_for

BASE_PORT = 56150

# RFC 5965 feedback report, as a mailbox provider's feedback loop sends it
ARF = """\
From: <fbl@isp.example.net>
To: <{verp}>
Subject: FW: Hello
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf"

--arf
Content-Type: text/plain

This is an email abuse report.

--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1
Original-Mail-From: <{verp}>
Original-Rcpt-To: <r1@ok.example.test>

--arf
Content-Type: text/rfc822-headers

From: News <news@example.test>
To: r1@ok.example.test
Subject: Hello
Message-ID: <{mid}@news.example.test>

--arf--
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Postfix:
    """A Postfix instance of its own: postfix -c DIR start ... stop."""

    def __init__(self, db_port):
        off = int(os.environ.get("BE_PORT_OFFSET", "0"))
        self.port = BASE_PORT + off           # the relay the engine sends through
        self.mx_port = BASE_PORT + 1 + off    # the recipient's server, which refuses
        self.dir = tempfile.mkdtemp(prefix="be-postfix-")
        os.chmod(self.dir, 0o755)
        d = self.dir
        self.maillog = os.path.join(d, "maillog")
        os.makedirs(os.path.join(d, "queue"))
        os.makedirs(os.path.join(d, "data"))
        shutil.chown(os.path.join(d, "data"), "postfix")
        write(os.path.join(d, "reject_rcpt"),
              "nobody@dead.example.test 550 5.1.1 <nobody@dead.example.test>: Recipient address rejected:"
              " User unknown in virtual mailbox table\n"
              "full@dead.example.test 452 4.2.2 <full@dead.example.test>: Mailbox full\n")
        write(os.path.join(d, "main.cf"), """\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.example.test
mydomain = example.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtputf8_enable = no
disable_dns_lookups = yes
smtp_host_lookup = native
notify_classes =
# one delivery attempt: a temporary refusal is returned at once (a soft bounce)
maximal_queue_lifetime = 0
bounce_queue_lifetime = 0
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
# the refusing server, a sink for everyone else, and the bounce domain's pipe
transport_maps = texthash:{d}/transport
""".format(d=d))
        write(os.path.join(d, "transport"), """\
dead.example.test smtp:[127.0.0.1]:{mx}
ok.example.test discard:
bounce.example.test bouncepipe:
""".format(mx=self.mx_port))
        conninfo = "postgresql://bounce_pipe@127.0.0.1:%d/be_test" % db_port
        write(os.path.join(d, "master.cf"), """\
127.0.0.1:{port} inet n - n - - smtpd
127.0.0.1:{mx} inet n - n - - smtpd
  -o myhostname=mx.dead.example.test
  -o smtpd_recipient_restrictions=check_recipient_access,texthash:{d}/reject_rcpt,permit_mynetworks,reject
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
bouncepipe unix - n n - - pipe
  flags=DORq user=nobody argv={script} {conninfo} pf {psql}
""".format(port=self.port, mx=self.mx_port, d=d, conninfo=conninfo,
           script=os.path.join(ROOT, "scripts", "bounce-pipe.sh"), psql=os.path.join(PGBIN, "psql")))

    def start(self):
        r = subprocess.run(["postfix", "-c", self.dir, "start"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("postfix did not start: %s %s\n%s" % (r.stdout, r.stderr, self.log()))
        wait_for("postfix listening", lambda: "daemon started" in self.log(), 30)

    def stop(self):
        subprocess.run(["postfix", "-c", self.dir, "abort"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.maillog) as f:
                return f.read()
        except OSError:
            return ""


def run(r):
    if not IS_ROOT or shutil.which("postfix") is None:
        r.check("postfix: installed, and the suite runs as root (Postfix's master needs it)", False,
                "postfix=%s root=%s" % (shutil.which("postfix"), IS_ROOT))
        return
    c = Cluster(56100, conf={
        "broadcast_engine.sender_workers": "1",
        "broadcast_engine.allow_insecure_transport": "on",
        "broadcast_engine.retry_base": "'200ms'",
    })
    pf = Postfix(c.port)
    try:
        c.start()
        DB(c.connect("postgres")).q("CREATE DATABASE be_test")
        db = DB(c.connect())
        db.q("CREATE EXTENSION broadcast_engine")
        # what the pipe connects as: a web front's role, nothing more
        db.q("CREATE ROLE bounce_pipe LOGIN IN ROLE broadcast_webhook")
        pf.start()

        db.q("""SELECT broadcast.create_workspace('pf', 'Postfix', 'UTC', '{"sending_domain": "news.example.test",
                "default_from_email": "news@example.test", "default_from_name": "News"}')""")
        db.q("SELECT broadcast.create_list('pf', 'l', 'Readers')")
        people = ["nobody@dead.example.test", "full@dead.example.test"] + ["r%d@ok.example.test" % i for i in range(1, 4)]
        for e in people:
            db.q("INSERT INTO broadcast.contacts (workspace_id, email) VALUES ('pf', %s)", e)
            db.q("INSERT INTO broadcast.list_members (workspace_id, list_id, email) VALUES ('pf', 'l', %s)", e)
        db.q("SELECT broadcast.create_template('pf', 't', 'Hello', '<p>Hello</p>')")
        db.q("""SELECT broadcast.create_integration('pf', 'mail', 'smtp', %s)""",
             '{"host": "127.0.0.1", "port": %d, "tls": "none", "ehlo_name": "engine.example.test",'
             ' "bounce_domain": "bounce.example.test", "bounce_local": "bounces"}' % pf.port)

        def status(bid):
            return db.row("SELECT status, sent_count, failed_count, total_recipients FROM broadcast.broadcasts"
                          " WHERE workspace_id = 'pf' AND broadcast_id = %s", bid)

        db.q("SELECT broadcast.create_broadcast('pf', 'b1', 'b1', '{l}', 'mail', 't')")
        db.q("SELECT broadcast.schedule_broadcast('pf', 'b1')")
        wait_for("first broadcast completed", lambda: status("b1")[0] == "completed", 60)
        r.check("postfix: Postfix accepted all 5 messages (%s)" % (status("b1"),), status("b1")[1:] == (5, 0, 5))

        # the envelope sender Postfix saw: bounces+<42-character token>@bounce.example.test; qmgr
        # logs it when it takes the message in, which can be just after the SMTP session's 250
        def envelope_senders():
            return [f for f in re.findall(r"from=<([^>]*)>, size=", pf.log()) if f]

        try:
            wait_for("Postfix logs five envelope senders", lambda: len(envelope_senders()) >= 5, 30)
        except AssertionError:
            pass
        froms = envelope_senders()
        verp = [f for f in froms if re.fullmatch(r"bounces\+[a-z2-7]{42}@bounce\.example\.test", f)]
        r.check("postfix: every message's MAIL FROM is a VERP address (%d of %d)" % (len(verp), len(froms)),
                len(verp) == 5 and len(set(verp)) == 5, froms)

        wait_for("the DSN recorded and the address suppressed", lambda: db.one(
            "SELECT count(*) FROM broadcast.suppressions WHERE workspace_id = 'pf'"
            " AND email = 'nobody@dead.example.test'") == 1, 60)

        def dsn_logged():
            log = pf.log()
            return (re.search(r"to=<nobody@dead\.example\.test>.*dsn=5\.1\.1, status=bounced", log) is not None
                    and re.search(r"to=<bounces\+[a-z2-7]{42}@bounce\.example\.test>, relay=bouncepipe"
                                  r".*status=sent", log) is not None)

        # Postfix logs the pipe's delivery after the pipe has exited, so after the suppression is visible
        try:
            wait_for("Postfix logs the DSN's delivery through the pipe", dsn_logged, 30)
        except AssertionError:
            pass
        r.check("postfix: the refusal produced a real DSN delivered through the pipe", dsn_logged(),
                pf.log()[-3000:])
        sup = db.row("SELECT reason, detail FROM broadcast.suppressions WHERE workspace_id = 'pf'"
                     " AND email = 'nobody@dead.example.test'")
        hist = db.row("SELECT bounce_type, bounced_at IS NOT NULL FROM broadcast.message_history"
                      " WHERE workspace_id = 'pf' AND broadcast_id = 'b1' AND email = 'nobody@dead.example.test'")
        r.check("postfix: a hard bounce (%s, %s) on the message's history %s" % (sup[0], sup[1], hist),
                sup[0] == "hard_bounce" and "5.1.1" in (sup[1] or "") and hist == ("hard", True), (sup, hist))
        # 452 4.2.2 with one delivery attempt: Postfix returns it at once, a soft bounce
        wait_for("the soft bounce recorded", lambda: db.one(
            "SELECT count(*) FROM broadcast.soft_bounces WHERE workspace_id = 'pf'"
            " AND email = 'full@dead.example.test'") == 1, 60)
        soft = db.row("SELECT bounce_type, (SELECT count(*) FROM broadcast.suppressions s WHERE s.workspace_id = 'pf'"
                      " AND s.email = 'full@dead.example.test') FROM broadcast.message_history"
                      " WHERE workspace_id = 'pf' AND broadcast_id = 'b1' AND email = 'full@dead.example.test'")
        r.check("postfix: a 4.2.2 refusal is a soft bounce, below the threshold not suppressed (%s)" % (soft,),
                soft == ("soft", 0), soft)
        intake = db.row("SELECT received, attributed, unattributed FROM broadcast.bounce_intake"
                        " WHERE workspace_id = 'pf'")
        r.check("postfix: two returned messages, both attributed (%s)" % (intake,), intake == (2, 2, 0), intake)

        # a complaint (RFC 5965) about r1's message, mailed to that message's VERP address
        mid = db.one("SELECT message_id::text FROM broadcast.message_history WHERE workspace_id = 'pf'"
                     " AND broadcast_id = 'b1' AND email = 'r1@ok.example.test'")
        queue_id = db.one("SELECT provider_message_id FROM broadcast.message_history WHERE workspace_id = 'pf'"
                          " AND message_id = %s", mid)
        ret = re.search(r"%s: from=<(bounces\+[a-z2-7]{42}@bounce\.example\.test)>" % re.escape(queue_id), pf.log())
        arf = ARF.format(verp=ret.group(1) if ret else "none@bounce.example.test", mid=mid)
        swaks = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % pf.port, "--from", "<>",
                                "--to", ret.group(1) if ret else "none@bounce.example.test",
                                "--data", "-"], input=arf, capture_output=True, text=True)
        r.check("postfix: swaks handed Postfix the complaint", swaks.returncode == 0, swaks.stdout[-500:])
        wait_for("the complaint recorded", lambda: db.one(
            "SELECT reason FROM broadcast.suppressions WHERE workspace_id = 'pf'"
            " AND email = 'r1@ok.example.test'") == "complaint", 60)
        r.check("postfix: the complaint is on r1's message", db.one(
            "SELECT complained_at IS NOT NULL FROM broadcast.message_history WHERE workspace_id = 'pf'"
            " AND message_id = %s", mid) is True)
        member = db.one("SELECT status FROM broadcast.list_members WHERE workspace_id = 'pf'"
                        " AND email = 'nobody@dead.example.test'")
        r.check("postfix: the list member is marked bounced (%s)" % member, member == "bounced")

        # the next broadcast leaves the address out
        db.q("SELECT broadcast.create_broadcast('pf', 'b2', 'b2', '{l}', 'mail', 't')")
        db.q("SELECT broadcast.schedule_broadcast('pf', 'b2')")
        wait_for("second broadcast completed", lambda: status("b2")[0] == "completed", 60)
        sent_to = [row[0] for row in db.q("SELECT email FROM broadcast.message_history WHERE workspace_id = 'pf'"
                                          " AND broadcast_id = 'b2' ORDER BY email")]
        r.check("postfix: the next broadcast leaves out the bounced and the complainer (%s)" % (status("b2"),),
                status("b2")[1:] == (3, 0, 3) and sent_to == ["full@dead.example.test", "r2@ok.example.test",
                                                              "r3@ok.example.test"], sent_to)
        wait_for("the second broadcast's messages relayed or returned", lambda: db.one(
            "SELECT received FROM broadcast.bounce_intake WHERE workspace_id = 'pf'") == 4, 60)
        r.check("postfix: the second soft bounce counted, still below the threshold of 3", db.row(
            "SELECT (SELECT count(*) FROM broadcast.soft_bounces WHERE workspace_id = 'pf'"
            "         AND email = 'full@dead.example.test'),"
            "       (SELECT count(*) FROM broadcast.suppressions WHERE workspace_id = 'pf')") == (2, 2))
    except Exception:
        print("# postfix log:\n" + "\n".join("#   " + line for line in pf.log().splitlines()[-40:]))
        print("# server log:\n" + "\n".join("#   " + line for line in c.tail_log(30).splitlines()))
        raise
    finally:
        pf.stop()
        c.destroy()

#!/usr/bin/env python3
"""Independent check of the MIME builder with Python's email package.

    python3 test/unit/check_mime.py <build-dir>

Runs <build-dir>/mime_dump into a temporary directory, parses every message
with email.parser.BytesParser(policy=email.policy.strict) and compares the
decoded result with the raw inputs recorded beside it (N.in).  Prints one
"ok - ..." / "not ok - ..." line per check and "N passed, N failed" last;
exits 1 on any failure.  Standard library only.
"""
import email.header
import email.policy
import email.utils
import os
import re
import subprocess
import sys
import tempfile
from email.parser import BytesParser

passed = 0
failed = 0


def check(cond, name, diag=None):
    global passed, failed
    if cond:
        passed += 1
        print("ok - %s" % name)
    else:
        failed += 1
        print("not ok - %s" % name)
        if diag is not None:
            for line in str(diag).splitlines()[:20]:
                print("#   %s" % line)


def clean(raw):
    """The documented header sanitising, re-implemented independently."""
    if raw is None:
        return ""
    b = raw.replace(b"\r\n", b" ")
    b = bytes(0x20 if (c < 0x20 or c == 0x7F) else c for c in b)
    return b.decode("utf-8", errors="replace").strip(" ")


def canonical(body):
    return re.sub(rb"\r\n|\r|\n", b"\r\n", body)


def load_inputs(path):
    d = {"xname": [], "xvalue": []}
    with open(path, "rb") as f:
        for line in f.read().decode().splitlines():
            key, _, val = line.partition(" ")
            if key == "date":
                d[key] = int(val)
                continue
            v = bytes.fromhex(val)
            if key in ("xname", "xvalue"):
                d[key].append(v)
            else:
                d[key] = v
    return d


def raw_checks(label, raw):
    check(all(b < 0x80 for b in raw), "%s: output is 7-bit ASCII" % label)
    bare = re.search(rb"(?<!\r)\n|\r(?!\n)", raw)
    check(bare is None, "%s: only CRLF line endings" % label,
          bare and raw[max(0, bare.start() - 40):bare.start() + 40])
    lines = raw.split(b"\r\n")
    longest = max(len(x) for x in lines)
    check(longest <= 998, "%s: no line over 998 (longest %d)" % (label, longest))
    try:
        sep = lines.index(b"")
    except ValueError:
        sep = len(lines)
    body_long = [x for x in lines[sep:] if len(x) > 76]
    check(not body_long, "%s: body lines <= 76" % label, body_long[:1])


def no_defects(label, msg):
    bad = []
    for part in msg.walk():
        if part.defects:
            bad.append(("part", part.get_content_type(), part.defects))
        for k, v in part.items():
            if getattr(v, "defects", None):
                bad.append((k, str(v), v.defects))
    check(not bad, "%s: no defects" % label, bad)


def raw_header(raw, field):
    """Unfolded raw value of the first header called field."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    m = re.search(r"^%s: (.*?)\r\n(?=[^ \t])" % re.escape(field),
                  head + "\r\nX", re.S | re.M | re.I)
    return re.sub(r"\r\n(?=[ \t])", "", m.group(1)) if m else None


def check_address(label, msg, raw, field, want_addr, want_name):
    h = msg[field]
    ok = h is not None and len(h.addresses) == 1
    check(ok, "%s: %s has one address" % (label, field), h)
    if not ok:
        return
    a = h.addresses[0]
    check(a.addr_spec == want_addr.decode(),
          "%s: %s address" % (label, field), (a.addr_spec, want_addr))
    want = clean(want_name)
    value = raw_header(raw, field)
    if value is not None and value.startswith("=?"):
        # Encoded display name.  Python's modern parser puts a space between
        # adjacent encoded-words of a phrase and collapses runs of white
        # space, contrary to RFC 2047 6.2, so compare it modulo white space
        # and decode exactly with the RFC-following legacy decoder.
        phrase = value[:value.rindex(" <")]
        exact = str(email.header.make_header(email.header.decode_header(phrase)))
        check(exact == want, "%s: %s display name (RFC 2047 decode)" % (label, field),
              "got  %r\nwant %r" % (exact, want))
        check(re.sub(r"\s", "", a.display_name) == re.sub(r"\s", "", want),
              "%s: %s display name (email package, modulo white space)" % (label, field),
              "got  %r\nwant %r" % (a.display_name, want))
    else:
        check(a.display_name == want,
              "%s: %s display name" % (label, field),
              "got  %r\nwant %r" % (a.display_name, want))


def part_body(part):
    return part.get_payload(decode=True)


def check_message(eml, inp):
    d = load_inputs(inp)
    label = d["label"].decode()
    with open(eml, "rb") as f:
        raw = f.read()
    raw_checks(label, raw)
    try:
        msg = BytesParser(policy=email.policy.strict).parsebytes(raw)
    except Exception as e:  # strict policy raises on defects
        check(False, "%s: parses under policy.strict" % label, repr(e))
        return
    check(True, "%s: parses under policy.strict" % label)
    no_defects(label, msg)

    html = d.get("html", b"")
    text = d.get("text", b"")
    derive = not text and html and "no_derive_text" not in d
    multipart = bool(html) and (bool(text) or derive)
    if derive and msg.get_content_type() == "text/html":
        multipart = False       # html without visible text: nothing derived

    # exactly the expected headers, in order: nothing injected
    want = ["Date", "From", "To"]
    if d.get("reply_to"):
        want.append("Reply-To")
    want += ["Subject", "Message-ID", "MIME-Version"]
    if d.get("unsubscribe_url") or d.get("unsubscribe_mailto"):
        want.append("List-Unsubscribe")
    one_click = d.get("unsubscribe_url", b"").lower().startswith(b"https://")
    if one_click:
        want.append("List-Unsubscribe-Post")
    want += [n.decode() for n in d["xname"]]
    want.append("Content-Type")
    if not multipart:
        want.append("Content-Transfer-Encoding")
    check(list(msg.keys()) == want, "%s: exactly the expected headers" % label,
          "got  %r\nwant %r" % (list(msg.keys()), want))

    check(str(msg["Subject"]) == clean(d.get("subject")),
          "%s: subject decodes to input" % label,
          "got  %r\nwant %r" % (str(msg["Subject"]), clean(d.get("subject"))))
    check_address(label, msg, raw, "From", d["from_email"], d.get("from_name"))
    check_address(label, msg, raw, "To", d["to_email"], d.get("to_name"))
    if d.get("reply_to"):
        check_address(label, msg, raw, "Reply-To", d["reply_to"], d.get("reply_to_name"))
    mid = "<%s@%s>" % (d["message_id"].decode(), d["domain"].decode())
    check(str(msg["Message-ID"]) == mid, "%s: Message-ID" % label, msg["Message-ID"])
    check(str(msg["MIME-Version"]) == "1.0", "%s: MIME-Version" % label)
    dt = msg["Date"].datetime
    check(dt is not None and int(dt.timestamp()) == d["date"],
          "%s: Date round-trips" % label, str(msg["Date"]))

    if d.get("unsubscribe_url") or d.get("unsubscribe_mailto"):
        items = []
        if d.get("unsubscribe_url"):
            items.append("<%s>" % d["unsubscribe_url"].decode())
        if d.get("unsubscribe_mailto"):
            m = d["unsubscribe_mailto"].decode()
            if not m.lower().startswith("mailto:"):
                m = "mailto:" + m
            items.append("<%s>" % m)
        check(str(msg["List-Unsubscribe"]) == ", ".join(items),
              "%s: List-Unsubscribe" % label, str(msg["List-Unsubscribe"]))
    if one_click:
        check(str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click",
              "%s: List-Unsubscribe-Post" % label)

    for n, v in zip(d["xname"], d["xvalue"]):
        got = str(msg[n.decode()])
        check(got == clean(v), "%s: header %s decodes to input" % (label, n.decode()),
              "got  %r\nwant %r" % (got, clean(v)))

    if multipart:
        parts = list(msg.iter_parts())
        types = [p.get_content_type() for p in parts]
        check(msg.get_content_type() == "multipart/alternative" and
              types == ["text/plain", "text/html"],
              "%s: multipart/alternative, text then html" % label, types)
        if types != ["text/plain", "text/html"]:
            return
        for p in parts:
            check(p.get_content_charset() == "utf-8", "%s: %s charset utf-8"
                  % (label, p.get_content_type()))
        check(part_body(parts[1]) == canonical(html),
              "%s: html body decodes to input" % label)
        if derive:
            t = part_body(parts[0])
            if label.startswith("random"):
                check(len(t) > 0, "%s: derived text part not empty" % label)
            else:
                check(len(t) > 0 and b"<" not in t and b"&amp;" not in t,
                      "%s: derived text part is plain" % label, t[:200])
        else:
            got = part_body(parts[0])
            check(got == canonical(text), "%s: text body decodes to input" % label,
                  "got  %r\nwant %r" % (got[:120], canonical(text)[:120]))
        boundary = msg.get_boundary()
        check(boundary and raw.count(("--" + boundary).encode()) == 3,
              "%s: boundary appears only as delimiters" % label)
    else:
        ctype = "text/html" if html else "text/plain"
        check(msg.get_content_type() == ctype, "%s: single part %s" % (label, ctype),
              msg.get_content_type())
        check(part_body(msg) == canonical(html if html else text),
              "%s: body decodes to input" % label)


def main():
    if len(sys.argv) != 2:
        print("usage: check_mime.py <build-dir>", file=sys.stderr)
        sys.exit(2)
    dumper = os.path.join(sys.argv[1], "mime_dump")
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([dumper, tmp], capture_output=True, text=True)
        check(r.returncode == 0, "mime_dump ran", r.stderr)
        if r.returncode == 0:
            names = sorted(f[:-4] for f in os.listdir(tmp) if f.endswith(".eml"))
            check(len(names) >= 30, "at least 30 messages (%d)" % len(names))
            for n in names:
                check_message(os.path.join(tmp, n + ".eml"),
                              os.path.join(tmp, n + ".in"))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

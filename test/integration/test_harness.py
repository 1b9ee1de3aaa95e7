"""The harness itself: what the other suites rely on from belib.

A suite's fixed port lies in the kernel's ephemeral range, so a client
connection of an earlier test can hold it when the suite starts its
cluster (a CI run failed so: "could not bind IPv4 address: Address
already in use").  Cluster.start then moves to a free port.
"""
import socket

from belib import DB, Cluster


def run(r):
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    c = Cluster(port)
    c.port = port  # exactly the held one, whatever BE_PORT_OFFSET says
    c.set_conf(port=str(port))
    try:
        c.start()
        db = DB(c.connect("postgres"))
        actual = int(db.one("SELECT current_setting('port')"))
        db.close()
        r.check("harness: a cluster whose port is held starts on another one (%d, not %d)" % (actual, port),
                actual == c.port and actual != port, (actual, c.port, port))
    finally:
        held.close()
        c.destroy()

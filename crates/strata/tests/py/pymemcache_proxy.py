"""pymemcache, as a new user runs it, against strata proxy's memcached door.

Usage: pymemcache_proxy.py HOST:PORT

Exercises every single-key command the proxy routes — get/gets/cas,
incr/decr, add/replace/append/prepend, touch, gat/gats and the meta
commands — with pymemcache's default client (noreply on by default for
writes) and one that waits for every reply. Exits non-zero, with the failed
check on stderr, on any failure.
"""

import sys

import pymemcache
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError, MemcacheServerError


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def meta(client, *lines):
    """Sends meta requests followed by mn; the replies before MN."""
    return client.raw_command(b"\r\n".join(lines) + b"\r\nmn", b"MN\r\n")


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    address = (host, int(port))
    print(f"pymemcache {pymemcache.__version__}")

    # The defaults: writes are sent with noreply.
    default = Client(address, connect_timeout=5, timeout=10)
    check(default.set("d:greeting", "hello") is True, "set (noreply)")
    check(default.get("d:greeting") == b"hello", "get after a noreply set")
    default.incr("d:greeting", 1, noreply=True)  # the refusal is not sent either
    check(default.get("d:greeting") == b"hello", "the connection stays in step")

    client = Client(address, connect_timeout=5, timeout=10, default_noreply=False)
    check(client.set("k", "v1", expire=100) is True, "set")
    check(client.get_many(["k", "missing"]) == {"k": b"v1"}, "get_many")

    # gets and cas: the CAS unique is the key's node's, and so is the cas.
    value, cas = client.gets("k")
    check(value == b"v1" and cas is not None, f"gets: {value!r} {cas!r}")
    check(client.cas("k", "v2", cas) is True, "cas with the current unique")
    check(client.cas("k", "v3", cas) is False, "cas with a stale unique is EXISTS")
    check(client.get("k") == b"v2", "the first cas won")
    check(client.cas("missing", "v", cas) is None, "cas of a missing key is NOT_FOUND")
    many = client.gets_many(["k", "missing"])
    check(set(many) == {"k"} and many["k"][0] == b"v2", f"gets_many: {many!r}")

    # incr and decr.
    check(client.set("n", "10") is True, "set a number")
    check(client.incr("n", 5) == 15, "incr")
    check(client.decr("n", 20) == 0, "decr stops at 0")
    check(client.incr("missing", 1) is None, "incr of a missing key")
    try:
        client.incr("k", 1)
        raise AssertionError("incr of a non-number was accepted")
    except MemcacheClientError as error:
        check(b"non-numeric" in error.args[0], f"incr of a non-number: {error!r}")

    # The conditional stores.
    check(client.add("k", "x") is False, "add of a present key")
    check(client.add("new", "x") is True, "add of an absent key")
    check(client.replace("new", "y") is True, "replace of a present key")
    check(client.replace("missing", "y") is False, "replace of a missing key")
    check(client.append("new", "z") is True, "append")
    check(client.prepend("new", "<") is True, "prepend")
    check(client.get("new") == b"<yz", f"append/prepend: {client.get('new')!r}")
    check(client.append("missing", "z") is False, "append to a missing key")

    # touch, gat and gats.
    check(client.touch("new", 300) is True, "touch")
    check(client.touch("missing", 300) is False, "touch of a missing key")
    got = client.raw_command(b"gat 200 new missing", b"END\r\n")
    check(got == b"VALUE new 0 3\r\n<yz\r\n", f"gat: {got!r}")
    got = client.raw_command(b"gats 200 new", b"END\r\n")
    check(got.startswith(b"VALUE new 0 3 ") and got.endswith(b"\r\n<yz\r\n"), f"gats: {got!r}")

    # Meta commands, relayed as the key's node answers them.
    got = meta(client, b"mg new v t f Oop k")
    check(got.startswith(b"VA 3 ") and b" Oop" in got and b" knew" in got, f"mg: {got!r}")
    check(b" t" in got and got.endswith(b"\r\n<yz\r\n"), f"mg: {got!r}")
    got = meta(client, b"ms mk 2 T60 F5\r\nhi")
    check(got == b"HD\r\n", f"ms: {got!r}")
    check(meta(client, b"mg mk v f") == b"VA 2 f5\r\nhi\r\n", "mg after ms")
    check(meta(client, b"ma n D7 v") == b"VA 1\r\n7\r\n", f"ma: {meta(client, b'mg n v')!r}")
    check(meta(client, b"md mk q", b"mg mk v q", b"mg new q k") == b"HD knew\r\n", "quiet mode")
    check(meta(client, b"md mk") == b"NF\r\n", "md of a missing key")

    # What the proxy cannot do, it says, and stays usable.
    try:
        client.flush_all()
        raise AssertionError("flush_all was accepted")
    except MemcacheServerError as error:
        check(b"not supported by strata proxy" in error.args[0], f"flush_all: {error!r}")
    check(client.get("n") == b"7", "the connection survives a refusal")
    check(client.delete("n") is True and client.delete("n") is False, "delete")
    print("all pymemcache checks passed")


if __name__ == "__main__":
    main()

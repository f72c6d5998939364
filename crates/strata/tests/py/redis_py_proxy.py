"""redis-py, as a new user runs it, against strata proxy's RESP door.

Usage: redis_py_proxy.py HOST:PORT

Exercises clients with default settings (redis-py 8 opens each connection
with HELLO 3) and with protocol=2 and protocol=3 given explicitly: the
handshake, strings, TTLs, pipelines, and the commands the proxy refuses.
Exits non-zero, with the failed check on stderr, on any failure.
"""

import sys
import time

import redis


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def refused(call, *words):
    """`call` raises a ResponseError whose text contains every word."""
    try:
        call()
    except redis.ResponseError as error:
        text = str(error)
        check(all(word in text for word in words), f"error {text!r} lacks {words}")
        return
    raise AssertionError(f"no error; expected one with {words}")


def handshake(client):
    """The protocol the pool's connections speak, and HELLO's reply if one
    was sent (redis-py keeps it as handshake_metadata)."""
    connection = client.connection_pool.get_connection()
    try:
        return connection.protocol, getattr(connection, "handshake_metadata", None)
    finally:
        client.connection_pool.release(connection)


def exercise(client, label, expected_proto):
    prefix = f"{label}:"
    key = lambda name: f"{prefix}{name}"
    proto, hello = handshake(client)
    if expected_proto == 3:
        check(hello is not None, f"{label}: no HELLO was sent (protocol {proto!r})")
        field = lambda name: hello.get(name.encode(), hello.get(name))
        check(field("proto") == 3, f"{label}: HELLO answered {hello!r}")
        check(field("server") in (b"redis", "redis"), f"{label}: server in {hello!r}")
        for name in ("version", "id", "mode", "role", "modules"):
            check(field(name) is not None, f"{label}: {name} missing from HELLO's {hello!r}")
    check(client.ping() is True, "PING")
    check(client.echo("hi") == b"hi", "ECHO")
    check(client.execute_command("SELECT", 0) in (True, b"OK", "OK"), "SELECT 0")
    check(client.client_setname("py-test") is True, "CLIENT SETNAME")
    check(client.client_getname() in (b"py-test", "py-test"), "CLIENT GETNAME")
    check(isinstance(client.client_id(), int), "CLIENT ID")

    # Strings, binary-safe.
    check(client.set(key("a"), b"1\r\n\x00two") is True, "SET")
    check(client.get(key("a")) == b"1\r\n\x00two", "GET")
    check(client.get(key("missing")) is None, "GET of a missing key is None")
    check(client.set(key("a"), "x", nx=True) is None, "SET NX on a present key")
    check(client.mset({key("m1"): "1", key("m2"): "2"}) is True, "MSET")
    check(client.mget([key("m1"), key("missing"), key("m2")]) == [b"1", None, b"2"], "MGET")
    check(client.strlen(key("m1")) == 1, "STRLEN")
    check(client.exists(key("m1"), key("m2"), key("missing")) == 2, "EXISTS")
    check(client.type(key("m1")) in (b"string", "string"), "TYPE of a string")
    check(client.type(key("missing")) in (b"none", "none"), "TYPE of a missing key")

    # TTLs.
    check(client.ttl(key("m1")) == -1, "TTL without expiry")
    check(client.ttl(key("missing")) == -2, "TTL of a missing key")
    check(client.expire(key("m1"), 100) is True, "EXPIRE")
    check(90 <= client.ttl(key("m1")) <= 100, f"TTL after EXPIRE: {client.ttl(key('m1'))}")
    check(90_000 <= client.pttl(key("m1")) <= 100_000, "PTTL")
    check(client.expire(key("m1"), 50, nx=True) is False, "EXPIRE NX on a key with a TTL")
    check(client.expire(key("m1"), 500, gt=True) is True, "EXPIRE GT")
    check(client.ttl(key("m1")) > 400, "EXPIRE GT took")
    check(client.persist(key("m1")) is True, "PERSIST")
    check(client.ttl(key("m1")) == -1, "TTL after PERSIST")
    check(client.persist(key("m1")) is False, "PERSIST without a TTL")
    check(client.expireat(key("m1"), int(time.time()) + 200) is True, "EXPIREAT")
    check(150 <= client.ttl(key("m1")) <= 200, "TTL after EXPIREAT")
    check(client.execute_command("SETEX", key("s"), 30, "v") in (True, b"OK", "OK"), "SETEX")
    check(0 < client.ttl(key("s")) <= 30, "TTL after SETEX")
    check(client.set(key("p"), "v", px=60_000) is True, "SET PX")
    check(0 < client.pttl(key("p")) <= 60_000, "PTTL after SET PX")
    check(client.expire(key("p"), 0) is True, "EXPIRE 0 deletes")
    check(client.get(key("p")) is None, "gone after EXPIRE 0")
    check(client.expire(key("missing"), 10) is False, "EXPIRE of a missing key")
    check(client.delete(key("a"), key("m2"), key("missing")) == 2, "DEL")
    check(client.unlink(key("m1")) == 1, "UNLINK")

    # A pipeline (no transaction: MULTI needs one server).
    pipe = client.pipeline(transaction=False)
    for i in range(50):
        pipe.set(key(f"pipe{i}"), i)
    for i in range(50):
        pipe.get(key(f"pipe{i}"))
    pipe.ttl(key("pipe0"))
    results = pipe.execute()
    check(results[:50] == [True] * 50, "pipelined SETs")
    check(results[50:100] == [str(i).encode() for i in range(50)], "pipelined GETs")
    check(results[100] == -1, "pipelined TTL")

    info = client.info()
    check("strata_version" in info and "ring_epoch" in info, f"INFO: {sorted(info)}")

    # What the proxy cannot do, it says.
    refused(lambda: client.dbsize(), "DBSIZE", "not supported by strata proxy")
    refused(lambda: client.keys("*"), "KEYS", "not supported by strata proxy")
    refused(lambda: client.incr(key("n")), "INCR", "not supported by strata proxy")
    refused(lambda: client.hset(key("h"), "f", "v"), "unknown command")
    check(client.get(key("pipe1")) == b"1", "the connection survives refusals")
    print(f"{label}: protocol {proto!r}: ok")


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    print(f"redis-py {redis.__version__}")
    default = redis.Redis(host=host, port=int(port), socket_timeout=10)
    proto, hello = handshake(default)
    print(f"default Redis(host, port): protocol {proto!r}, HELLO sent: {hello is not None}")
    major = int(redis.__version__.split(".")[0])
    # redis-py 8 made RESP3 the default; older ones speak RESP2 unless told.
    exercise(default, "default", 3 if major >= 8 else None)
    exercise(redis.Redis(host=host, port=int(port), protocol=3, socket_timeout=10), "resp3", 3)
    exercise(redis.Redis(host=host, port=int(port), protocol=2, socket_timeout=10), "resp2", 2)
    # Decoded responses over RESP3: HELLO's map and replies as str.
    text = redis.Redis(host=host, port=int(port), protocol=3, decode_responses=True, socket_timeout=10)
    check(text.set("decoded", "é") is True and text.get("decoded") == "é", "decode_responses")
    print("all redis-py checks passed")


if __name__ == "__main__":
    main()

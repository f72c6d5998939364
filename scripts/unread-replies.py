#!/usr/bin/env python3
"""RSS of a RESP server under clients that never read their replies.

Usage: scripts/unread-replies.py NAME:COMMAND... (COMMAND gets {port} for
RESP, {mport} for memcached, {aport} for any other port), e.g.

  scripts/unread-replies.py \
    "strata:target/release/strata server --port {port} --memcache-port {mport} --admin-port {aport} --maxmemory 64mb" \
    "redis:redis-server --port {port} --maxmemory 64mb --save '' --appendonly no"

For each server: start it on a free loopback port with a 64 MiB memory
limit (the COMMAND says how), store one 1 MB value, then
  A. one client sends `MGET big big ... big` (2,000 keys: a 2 GB reply)
     five times and reads nothing;
  B. another pipelines up to 5,000 `GET big` for up to 5 s, reading nothing;
  C. (servers with a memcached port, `{mport}` in COMMAND) a memcached
     client sends one `get` line naming the key 18,000 times (72 KB; an
     18 GB reply) and reads nothing;
and report RSS (MiB, from /proc) after each, and whether a third client is
still served. Bounded: each load stops at its count or its time.
"""
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from serverproc import free_port, rss_mib, start  # noqa: E402


def run(name, command):
    port, mport = free_port(), free_port()
    server, client = start(name, command, port, mport=mport, aport=free_port())
    try:
        base = rss_mib(server.pid)
        value = b"v" * 1_000_000
        client.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1000000\r\n" + value + b"\r\n")
        client.recv(5)
        greedy = socket.create_connection(("127.0.0.1", port))
        greedy.settimeout(5)
        mget = b"*2001\r\n$4\r\nMGET\r\n" + b"$3\r\nbig\r\n" * 2000
        for _ in range(5):
            try:
                greedy.sendall(mget)
            except OSError:
                break
        time.sleep(2)
        after_a = rss_mib(server.pid)
        pipeliner = socket.create_connection(("127.0.0.1", port))
        pipeliner.setblocking(False)
        request, sent, deadline = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", 0, time.time() + 5
        while sent < 5000 and time.time() < deadline:
            try:
                pipeliner.send(request)
                sent += 1
            except BlockingIOError:
                time.sleep(0.01)
        time.sleep(2)
        after_b = rss_mib(server.pid)
        after_c = "—"
        if "{mport}" in command:
            getter = socket.create_connection(("127.0.0.1", mport))
            getter.sendall(b"set big 0 0 1000000\r\n" + value + b"\r\n")
            getter.recv(8)
            getter.setblocking(False)
            line, at, deadline = b"get" + b" big" * 18000 + b"\r\n", 0, time.time() + 5
            while at < len(line) and time.time() < deadline:
                try:
                    at += getter.send(line[at:])
                except BlockingIOError:
                    time.sleep(0.01)
            time.sleep(2)
            after_c = f"{rss_mib(server.pid):.1f}"
        client.settimeout(5)
        try:
            client.sendall(b"PING\r\n")
            served = client.recv(7) == b"+PONG\r\n"
        except OSError:
            served = False
        print(f"| {name} | {base:.1f} | {after_a:.1f} | {after_b:.1f} ({sent} GETs) | {after_c} | {'yes' if served else 'no'} |")
    finally:
        server.terminate()
        server.wait()


print("| server | RSS MiB at start | after A (MGET ×2000, ×5) | after B (pipelined GETs) | after C (get line ×18000) | others served |")
print("|---|---:|---:|---:|---:|---|")
for spec in sys.argv[1:]:
    name, command = spec.split(":", 1)
    run(name, command)

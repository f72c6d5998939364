#!/usr/bin/env python3
"""Reproduces a stale read found by scripts/soak: a stand-in's copy from a
first outage of a cache server is served again in a second outage of the
same server, although a newer write was acknowledged in between.

Usage: scripts/repro-standin-stale.py [cache-aside|write-through|write-behind]

Starts the soak's stack (private PostgreSQL, 2 servers + gutter, proxy,
node, invalidator; scripts/soak's classes) and, through the node's HTTP API:
writes ids 0..39 (seq 1) and reads them; SIGKILLs the owner A of one of
them, X, and reads X (the node's client marks A down and fills X on the
next server on the ring, B, with the 60 s gutter TTL); restarts A (empty),
writes every other id again (so every client's connections to A are fresh
and the deletes reach A, not B), then writes X (seq 2, acknowledged; its
delete and the invalidator's go to A); SIGKILLs A again and reads X ten
times. Prints how many of those reads return seq 1 (B's copy). Bounded:
about 30 s. Before the fix (the owner's recovery now deletes its keys on
the stand-ins): 10 of 10 stale; now: 0.
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
here = os.path.dirname(os.path.abspath(__file__))
loader = importlib.machinery.SourceFileLoader("soak", os.path.join(here, "soak"))
spec = importlib.util.spec_from_loader("soak", loader)
soak = importlib.util.module_from_spec(spec)
loader.exec_module(soak)

strategy = sys.argv[1] if len(sys.argv) > 1 else "cache-aside"
args = argparse.Namespace(seed=1, maxmemory="32mb", binary=soak.default_binary(), servers=2,
                          strategy=strategy, keep=False, seconds=60)
stack = soak.Soak(args)
stale = None
try:
    stack.start()
    node = soak.Http(stack.node_port)

    def get(i):
        status, body = node.request("GET", f"/items/{i}")
        assert status == 200, (status, body)
        return json.loads(body)

    def put(i, value):
        status, body = node.request("PUT", f"/items/{i}", json.dumps({"value": value}))
        assert status in (200, 202), (status, body)

    for i in range(40):
        put(i, f"{i}|1|first")
    time.sleep(1)
    for i in range(40):
        get(i)
        get(i)
    a, a_port = stack.servers[0][0], stack.servers[0][1]
    held = soak.Memcache(a_port).get_many([b"item:%d" % i for i in range(40)])
    x = int(sorted(held)[0].split(b":")[1])
    print(f"id {x} is owned by {a.name}; SIGKILL it")
    a.kill9()
    for _ in range(10):
        item = get(x)
        time.sleep(0.3)
    print(f"  read during outage 1: {item['value']} ({item['source']})")
    b_copy = soak.Memcache(stack.servers[1][1]).get_many([b"item:%d" % x])
    print(f"  {stack.servers[1][0].name} (stand-in) holds {[v[16:] for v in b_copy.values()]}")
    a.start()
    a.wait_up()
    time.sleep(5)
    for i in range(40):
        if i != x:
            put(i, f"{i}|2|warm")
            get(i)
    time.sleep(2)
    put(x, f"{x}|2|second")
    time.sleep(1)
    print(f"{a.name} restarted; wrote {x}|2 (acknowledged); read: {get(x)['value']}; SIGKILL {a.name} again")
    a.kill9()
    stale = 0
    for _ in range(10):
        item = get(x)
        stale += item["value"].endswith("|first")
        time.sleep(0.3)
    print(f"  last read during outage 2: {item['value']} ({item['source']})")
    print(f"stale reads in outage 2: {stale} of 10")
finally:
    stack.cleanup()
sys.exit(1 if stale else 0)

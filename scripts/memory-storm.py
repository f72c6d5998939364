#!/usr/bin/env python3
"""RSS of a RESP server under a storm of SETs of mixed value sizes.

Usage: scripts/memory-storm.py [--gib G] [--sizes S,S,...] NAME:COMMAND...
(COMMAND gets {port} for RESP and {aport} for any other port), e.g.

  scripts/memory-storm.py \
    "strata:target/release/strata server --port {port} --memcache-port 0 --admin-port {aport} --maxmemory 64mb" \
    "redis:redis-server --port {port} --maxmemory 64mb --maxmemory-policy allkeys-lru --save '' --appendonly no"

For each server: start it on a free loopback port (the COMMAND sets a
64 MiB limit), read its idle RSS, then one connection writes G GiB (1.5 by
default) of SETs in pipelined batches of 32, keys random among 1,000,000,
values drawn from the sizes given (default: the issue's 100 B, 1 KB, 4 KB,
16 KB, 64 KB and 120 KB; `--sizes 1-1024` draws uniformly from a range).
RSS is sampled after every batch; the table gives the idle RSS, the peak,
and (peak - idle) / limit: a hard limit keeps that at or under 1.10.
Bounded: each server stops at G GiB or 10 minutes.
"""
import argparse
import random
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from serverproc import free_port, rss_mib, start  # noqa: E402


def sizes_from(text):
    if "-" in text and "," not in text:
        low, high = (int(x) for x in text.split("-"))
        return lambda rng: rng.randint(low, high)
    choices = [int(x) for x in text.split(",")]
    return lambda rng: rng.choice(choices)


def run(name, command, gib, draw, limit_mib):
    server, client = start(name, command, free_port(), aport=free_port())
    try:
        client.settimeout(30)
        idle = rss_mib(server.pid)
        rng = random.Random(7)
        blob = rng.randbytes(130_000)
        total, peak, errors, batches = 0, idle, 0, 0
        deadline = time.time() + 600
        while total < gib * (1 << 30) and time.time() < deadline:
            parts = []
            for _ in range(32):
                key = b"storm:%d" % rng.randrange(1_000_000)
                size = draw(rng)
                offset = rng.randrange(len(blob) - size)
                parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, size))
                parts.append(blob[offset:offset + size])
                parts.append(b"\r\n")
                total += size
            client.sendall(b"".join(parts))
            replies, buffer = 0, b""
            while replies < 32:
                buffer += client.recv(65536)
                lines = buffer.split(b"\r\n")
                buffer = lines.pop()
                replies += len(lines)
                errors += sum(1 for line in lines if line.startswith(b"-"))
            batches += 1
            peak = max(peak, rss_mib(server.pid))
        end = rss_mib(server.pid)
        ratio = (peak - idle) / limit_mib
        print(f"| {name} | {total / (1 << 30):.2f} | {idle:.1f} | {peak:.1f} | {end:.1f} | {ratio:.3f} | {errors} |",
              flush=True)
        return ratio
    finally:
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.5, help="GiB of values to write per server")
    parser.add_argument("--sizes", default="100,1000,4000,16000,64000,120000",
                        help="value sizes: a comma list to draw from, or MIN-MAX")
    parser.add_argument("--limit-mib", type=float, default=64, help="the limit the COMMANDs set, in MiB")
    parser.add_argument("servers", nargs="+", metavar="NAME:COMMAND")
    args = parser.parse_args()
    print(f"value sizes {args.sizes}, {args.gib} GiB per server, limit {args.limit_mib:g} MiB")
    print()
    print("| server | GiB written | idle RSS MiB | peak RSS MiB | RSS at end MiB | (peak − idle) ÷ limit | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for spec in args.servers:
        name, command = spec.split(":", 1)
        run(name, command, args.gib, sizes_from(args.sizes), args.limit_mib)


if __name__ == "__main__":
    main()

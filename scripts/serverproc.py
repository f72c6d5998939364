"""Helpers the server-measuring scripts share (scripts/unread-replies.py,
scripts/memory-storm.py): free loopback ports, a process's RSS, and a
server started from a command line with port placeholders."""
import shlex
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start(name, command, port, **ports):
    """Starts COMMAND (its {port} and any other {placeholder} filled with
    `port` and `ports`), waits up to 10 s for `port` to accept, and returns
    the process and a connection to it."""
    server = subprocess.Popen(shlex.split(command.format(port=port, **ports)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            return server, socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.05)
    server.terminate()
    server.wait()
    raise RuntimeError(f"{name} did not start")

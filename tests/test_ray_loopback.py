"""A run that starts its own local Ray (actors.session.ray_session) listens on loopback only:
GCS, raylet, agents and workers accept no connection from another machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in its own process (the test session's Ray is already up there): starts a local
# session, starts one worker, and prints every listening TCP address of its process tree.
PROBE = r'''
import json, os, ray
from actors.session import ray_session

def tree(root):
    kids = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        kids.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(pid))
    todo, seen = [root], []
    while todo:
        seen.append(todo.pop())
        todo += kids.get(seen[-1], [])
    return seen

def listening(pids):
    inodes = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes[link[8:-1]] = pid
        except OSError:
            pass
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:         # 0A: LISTEN
                found.append(f[1].split(":")[0])
    return found

with ray_session(num_cpus=1, object_store_memory=128 * 1024**2):
    ray.get(ray.remote(lambda: 1).remote())              # a worker is up too
    print(json.dumps({"node_ip": ray.util.get_node_ip_address(),
                      "listening": listening(tree(os.getpid()))}))
'''

# IPv4 127.0.0.1, the same mapped into IPv6, and ::1, as /proc/net/tcp{,6} write them.
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def test_a_local_session_listens_on_loopback_only():
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["node_ip"] == "127.0.0.1"
    assert len(seen["listening"]) >= 3                   # GCS, raylet, a worker at least
    assert set(seen["listening"]) <= LOOPBACK, seen["listening"]

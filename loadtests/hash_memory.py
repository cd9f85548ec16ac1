#!/usr/bin/env python3
"""Registers USERS new users (default 160) and logs each one in, from CLIENTS
concurrent clients (default 8), against a running server; prints the
server's VmRSS before, right after, and 10 s later (RESULTS.md, section 9).

    SERVER_PID=$(pgrep -n rookery) BASE_URL=http://127.0.0.1:8080 PREFIX=run1 ./hash_memory.py

Use a new PREFIX per run (usernames must be new). Start the server with
ROOKERY_REGISTER_PER_MINUTE and ROOKERY_LOGIN_PER_MINUTE raised, or the
registrations from one address are throttled."""
import json, os, sys, time, urllib.request, urllib.error
from concurrent.futures import ThreadPoolExecutor

base = os.environ.get("BASE_URL", "http://127.0.0.1:8080")
pid = int(os.environ["SERVER_PID"])
n = int(os.environ.get("USERS", "160"))
clients = int(os.environ.get("CLIENTS", "8"))
prefix = os.environ.get("PREFIX", "mem")

def status(field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code

def one(i):
    name = f"{prefix}{i:04d}"
    r = post("/api/v1/auth/register", {"username": name, "email": f"{name}@example.com", "password": "correct horse battery"})
    l = post("/api/v1/auth/login", {"login": name, "password": "correct horse battery"})
    return r, l

before = status("VmRSS")
print(f"VmRSS before: {before} KiB ({before/1024:.1f} MB)")
t0 = time.time()
with ThreadPoolExecutor(clients) as pool:
    results = list(pool.map(one, range(n)))
elapsed = time.time() - t0
codes = {}
for r, l in results:
    codes[f"register {r}"] = codes.get(f"register {r}", 0) + 1
    codes[f"login {l}"] = codes.get(f"login {l}", 0) + 1
after = status("VmRSS")
print(f"{n} users registered and logged in by {clients} clients in {elapsed:.1f} s: {codes}")
print(f"VmRSS after:  {after} KiB ({after/1024:.1f} MB); VmHWM {status('VmHWM')} KiB")
time.sleep(10)
print(f"VmRSS 10 s later: {status('VmRSS')} KiB ({status('VmRSS')/1024:.1f} MB)")

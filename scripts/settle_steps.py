#!/usr/bin/env python3
"""The settle script cut after each of its steps (scripts/profile-settle.sh steps; issue 13).

Reads a `redis-cli MONITOR` capture of a gateway settling (the `SCRIPT LOAD` of a settle script and the `EVALSHA`
calls of it), and writes, per step, the script returning right after that step (`load-<step>.resp`) and the captured
calls made new (`calls-<step>.resp`: each hospital settlement id given a suffix of its own, so that every call is a
new settlement and none a replay), as raw RESP for `redis-cli --pipe`. Instructions of one step = those of the
script cut after it minus those of the script cut before it. Python's standard library only.

usage: settle_steps.py MONITOR_FILE OUT_DIR [CALLS]
"""
import hashlib
import os
import sys

# (step name, the line of settle.lua the script returns before; None = the whole script). In order.
STEPS = [
    ("call", b"local MODE, REQUEST, RULESET_VERSION"),
    ("request", b"local function fmt(x)"),
    ("reads", b"-- Redis refuses an HINCRBY past"),
    ("split", b"if not settle then return result end"),
    ("counters", b"-- The day's reconciliation line, once"),
    ("record", b"call('SET', KEYS[5], 'S:' .. CARD_ID)"),
    ("lines", b"-- The event: the same field names"),
    ("event", b"-- A pool taken across 80, 90 or 100 %"),
    ("all", None),
]
MARK = b"-- settle.lua: check, split and record"


def tokens(line):
    """The quoted arguments of one MONITOR line (sdscatrepr escapes), as bytes."""
    out, i = [], line.find(b'] "')
    if i < 0:
        return out
    i += 2
    while i < len(line):
        if line[i:i + 1] != b'"':
            i += 1
            continue
        i += 1
        buf = bytearray()
        while line[i:i + 1] != b'"':
            c = line[i:i + 1]
            if c == b"\\":
                n = line[i + 1:i + 2]
                if n == b"x":
                    buf.append(int(line[i + 2:i + 4], 16))
                    i += 4
                    continue
                buf += {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}.get(n, n)
                i += 2
                continue
            buf += c
            i += 1
        out.append(bytes(buf))
        i += 1
    return out


def resp(args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def cut(source, before):
    """The script returning just before the first line that starts with `before` (after the prelude)."""
    if before is None:
        return source
    body = source.index(MARK)
    at = source.index(before, body)
    return source[:at] + b"do return 'cut' end\n" + source[at:]


def main():
    monitor, out = sys.argv[1], sys.argv[2]
    want = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    scripts, calls = {}, []
    with open(monitor, "rb") as f:
        for line in f:
            t = tokens(line.rstrip(b"\n"))
            if len(t) == 3 and t[0].upper() == b"SCRIPT" and t[1].upper() == b"LOAD" and MARK in t[2]:
                scripts[hashlib.sha1(t[2]).hexdigest().encode()] = t[2]
            elif len(t) > 3 and t[0].upper() == b"EVALSHA":
                calls.append(t[1:])
    # the settle script called most, and its calls without an insurance ref (9 keys) in settle mode
    by_sha = {}
    for c in calls:
        if c[0] in scripts and c[1] == b"9" and c[11] == b"settle":
            by_sha.setdefault(c[0], []).append(c)
    if not by_sha:
        sys.exit("no settle calls of a captured settle script in " + monitor)
    sha, chosen = max(by_sha.items(), key=lambda kv: len(kv[1]))
    chosen = (chosen * (want // len(chosen) + 1))[:want]
    os.makedirs(out, exist_ok=True)
    for n, (name, before) in enumerate(STEPS):
        source = cut(scripts[sha], before)
        new_sha = hashlib.sha1(source).hexdigest().encode()
        with open(os.path.join(out, "load-%s.resp" % name), "wb") as f:
            f.write(resp([b"SCRIPT", b"LOAD", source]))
        with open(os.path.join(out, "calls-%s.resp" % name), "wb") as f:
            for i, c in enumerate(chosen):
                # EVALSHA sha 9 K1..K9 A1..: K4 the record, K5 the claim, A5 (c[15]) the hospital settlement id
                keys, args = list(c[2:11]), list(c[11:])
                hsid = args[4]
                new = hsid + b"-%dx%d" % (n, i)
                keys[3] = keys[3].replace(b"/" + hsid, b"/" + new)
                keys[4] = keys[4].replace(b"/" + hsid, b"/" + new)
                args[4] = new
                f.write(resp([b"EVALSHA", new_sha, b"9"] + keys + args))
    print("%d calls of script %s; steps: %s" % (len(chosen), sha.decode()[:12], " ".join(s for s, _ in STEPS)))


if __name__ == "__main__":
    main()

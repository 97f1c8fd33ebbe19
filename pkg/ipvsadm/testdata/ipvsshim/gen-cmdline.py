#!/usr/bin/env python3
"""Regenerate ../cmdline.jsonl from ../cmdline-cases.txt with the real
ipvsadm binary, through shim.so (see README). Each case line is an
ipvsadm command line in shell syntax; '#' lines are comments."""
import json, os, shlex, shutil, subprocess, tempfile

here = os.path.dirname(os.path.abspath(__file__))
build = tempfile.mkdtemp()
shim = os.path.join(build, "shim.so")
subprocess.run(["gcc", "-Wall", "-shared", "-fPIC", "-O1", "-o", shim,
                os.path.join(here, "shim.c"), "-ldl"], check=True)
ipvsadm = os.environ.get("IPVSADM", "/usr/sbin/ipvsadm")
out = []
for line in open(os.path.join(here, "..", "cmdline-cases.txt")):
    line = line.rstrip("\n")
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    args = shlex.split(line)
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "log")
        env = dict(os.environ, LD_PRELOAD=shim, IPVSSHIM_LOG=log)
        env.pop("IPVSSHIM_STATE", None)
        p = subprocess.run(["ipvsadm"] + args, executable=ipvsadm, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        kernel = open(log).read().rstrip("\n") if os.path.exists(log) else ""
    case = {"args": args, "exit": p.returncode, "stderr": p.stderr}
    if kernel:
        case["kernel"] = kernel
    # Past parsing, the stand-in kernel fails what it cannot do over the old
    # sockopt interface (IPv6, --pe), -c finds no /proc file and -L -t no
    # service: the command line itself was accepted.
    if p.stderr in ("Operation not supported with specified address family\n",
                    "cannot open file /proc/net/ip_vs_conn\n", "No such service\n"):
        case = {"args": args, "exit": 0, "stderr": "", "note": "accepted; " + p.stderr.strip()}
    out.append(case)
with open(os.path.join(here, "..", "cmdline.jsonl"), "w") as f:
    for c in out:
        f.write(json.dumps(c) + "\n")
shutil.rmtree(build)
print(len(out), "cases")

"""Bench row at scale (issue 14): 100 TransientDomain monitors on one node against 100 VirtualDomain monitors
of the same domains, and the libvirtd client connections a probe storm of each opens at its peak.

One private libvirtd with libvirt's LXC driver (lab/rigs/libvirt_lxc.py) runs COUNT containers, each PID 1 a
`sleep` that does nothing else (so the containers add no noise of their own). A run is one round: every
resource's monitor in turn, as one node's execd runs recurring monitors (tests/bench/monitor_round.py); its CPU
(user + system of the whole round, from wait4) divided by the 10 s interval is the share of a CPU that the
monitors of COUNT guests take. Goal: <= 0.25x VirtualDomain, wall and CPU.

The probe storm starts every resource's probe at once (a node joining: all resources probed there together)
and samples the libvirtd's open sockets every few milliseconds: the peak above its idle count is the number of
client connections the storm held open at once (each pyra probe opens one and closes it; each VirtualDomain
probe runs several virsh calls in turn).
"""

import contextlib
import json
import os
import shutil
import sys
import threading
import time
import uuid as uuidlib

from bench.core import Command, Comparison, Note

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO = os.path.dirname(TESTS)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

COUNT = int(os.environ.get("PYRA_BENCH_SCALE", "100"))
INTERVAL = 10.0
VIRTUALDOMAIN = "/usr/lib/ocf/resource.d/heartbeat/VirtualDomain"
PY = "/usr/bin/python3"
ROUND = os.path.join(TESTS, "bench", "monitor_round.py")
HV = "lxc:///system"


def _env(config, instance, rsctmp, rtype, interval_ms):
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "1", "OCF_RESOURCE_INSTANCE": instance, "OCF_RESOURCE_TYPE": rtype,
            "OCF_RESKEY_config": config, "OCF_RESKEY_hypervisor": HV, "OCF_RESKEY_CRM_meta_timeout": "30000",
            "OCF_RESKEY_CRM_meta_interval": str(interval_ms), "HA_RSCTMP": rsctmp, "LC_ALL": "C"}


def peak_connections(node, argv):
    """Run ``argv`` (a storm) while sampling the node's libvirtd sockets; the peak above the idle count."""
    import subprocess
    from lab.rigs.libvirt_node import socket_count
    pid = node.libvirtd_pid()
    idle = socket_count(pid)
    peak = [idle]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], socket_count(pid))
            time.sleep(0.002)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        res = subprocess.run(argv, capture_output=True, timeout=600)
    finally:
        done.set()
        sampler.join()
    if res.returncode != 0:
        raise RuntimeError("storm %s failed: rc %d" % (argv[-2], res.returncode))
    return peak[0] - idle


@contextlib.contextmanager
def comparisons():
    from lab.rigs import libvirt_lxc as X
    if not os.access(VIRTUALDOMAIN, os.X_OK):
        raise RuntimeError("%s is not installed (package resource-agents)" % VIRTUALDOMAIN)
    node = X.LxcNode("td-scale%d" % os.getpid())
    work = X.WORK / ("scale-%d" % os.getpid())
    rsctmp = work / "rsctmp"
    try:
        node.start()
        for d in (work / "xml", work / "roots", rsctmp):
            d.mkdir(parents=True, exist_ok=True)
        configs = []
        conn = node.conn()
        for i in range(COUNT):
            name = "scale%03d" % i
            root = X.make_root(work / "roots" / name, init="deaf")
            (root / "sbin" / "init").write_text("#!/bin/sh\nexec /bin/sleep 999999999\n")  # idle: no noise
            config = str(work / "xml" / (name + ".xml"))
            with open(config, "w", encoding="utf-8") as handle:
                handle.write(X.container_xml(name, root, str(uuidlib.uuid4()), memory_mib=16))
            with open(config, encoding="utf-8") as handle:
                conn.createXML(handle.read(), 0)  # transient, as the agent starts them
            configs.append(config)
        envs = {}
        for agent, rtype in (("pyra", "TransientDomain"), ("vd", "VirtualDomain")):
            for mode, interval_ms in (("serial", 10000), ("storm", 0)):
                path = str(work / ("%s-%s.json" % (agent, mode)))
                with open(path, "w", encoding="utf-8") as handle:
                    json.dump([_env(c, "%s-%d" % (agent, i), str(rsctmp), rtype, interval_ms)
                               for i, c in enumerate(configs)], handle)
                envs[agent, mode] = path
        pyra = os.path.join(REPO, "agents", "TransientDomain")
        on_node = node.ns_prefix()
        on_node[0] = shutil.which(on_node[0])  # Command execs without a PATH search

        def round_of(agent, path, mode):
            return Command(on_node + [PY, ROUND, mode, agent, envs[path, mode]])

        def storm(agent, key):
            return lambda: peak_connections(node, on_node + [PY, ROUND, "storm", agent, envs[key, "storm"]])
        pyra_peak, vd_peak = storm(pyra, "pyra"), storm(VIRTUALDOMAIN, "vd")
        yield [
            Comparison("%d TransientDomain monitors, one 10 s round" % COUNT, round_of(pyra, "pyra", "serial"),
                       round_of(VIRTUALDOMAIN, "vd", "serial"), goal=0.25, label_b="VirtualDomain", runs=3,
                       warmup=1),
            Note("CPU share of %d monitors every %.0f s (one round's CPU / interval)" % (COUNT, INTERVAL),
                 lambda: _share(round_of(pyra, "pyra", "serial"), round_of(VIRTUALDOMAIN, "vd", "serial"))),
            Note("probe storm of %d, peak libvirtd client connections" % COUNT,
                 lambda: "TransientDomain %d, VirtualDomain %d" % (pyra_peak(), vd_peak())),
        ]
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)


def _share(a, b):
    """One more round of each: the CPU share of a core at one round per INTERVAL, and their ratio."""
    _, a_cpu, a_code = a.run_once()
    _, b_cpu, b_code = b.run_once()
    if a_code or b_code:
        raise RuntimeError("a round failed (pyra rc %d, VirtualDomain rc %d)" % (a_code, b_code))
    return "TransientDomain %.1f%%, VirtualDomain %.1f%% of one CPU (ratio %.2fx)" % (
        100 * a_cpu / INTERVAL, 100 * b_cpu / INTERVAL, a_cpu / b_cpu)

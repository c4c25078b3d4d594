"""Bench row: ocf:pyra:VServer monitor vs what the seeds ran: rgmanager's script.sh around a vserver wrapper.

No agent for Linux-VServer exists upstream; the seeds wrapped ``/etc/vservers/bin/vs`` (not public) in an
rgmanager ``script`` resource. rgmanager is not packaged in Debian 12, so the anchor is rebuilt here as a
faithful reduction: ``script.sh`` (bash, sources ocf-shellfuncs, checks that the file is an executable, runs
``$file status``, maps any non-zero exit to 1) calling a ``vs`` wrapper (sh) that runs ``vserver NAME status``.
Both sides talk to the same util-vserver contract simulator (tests/fakes/vserver), so the row measures the
agents' own cost: pyra's Python start and imports (~10 ms CPU) against bash + ocf-shellfuncs + sh (~4 ms).
With the real util-vserver, `vserver NAME status` (what the wrapper ran) is much heavier than `running` (what
pyra runs), which the simulator does not reproduce. Goal: no slower than the shell wrapper.
"""

import contextlib
import os
import shutil
import sys

from bench.core import Command, Comparison

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO = os.path.dirname(TESTS)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

WORK = "/var/tmp/pyra-vs/bench"
RSCTMP = "/run/pyra-vs/bench-rsctmp"

SCRIPT_SH = r"""#!/bin/bash
# A reduction of rgmanager's script.sh (resource-agents/rgmanager/src/resources/script.sh): what it ran for
# a "script" resource on every status check.
export LC_ALL=C LANG=C PATH=/bin:/sbin:/usr/bin:/usr/sbin
. /usr/lib/ocf/lib/heartbeat/ocf-shellfuncs
[ -n "${OCF_RESKEY_file}" ] || exit $OCF_ERR_ARGS
[ -f "${OCF_RESKEY_file}" ] && [ -s "${OCF_RESKEY_file}" ] && [ -x "${OCF_RESKEY_file}" ] || exit $OCF_ERR_ARGS
case $1 in
    start|stop|status|monitor)
        [ "$1" = monitor ] && set -- status
        ocf_log debug "Executing ${OCF_RESKEY_file} $1"
        "${OCF_RESKEY_file}" $1
        declare -i rv=$?
        if [ $rv -ne 0 ]; then
            ocf_log err "$1 on ${OCF_RESKEY_name} \"${OCF_RESKEY_file}\" returned $rv"
            exit $OCF_ERR_GENERIC
        fi
        exit 0 ;;
    *) exit 0 ;;
esac
"""

VS_WRAPPER = """#!/bin/sh
# /etc/vservers/bin/vs stand-in: one vserver per resource, LSB-ish verbs
exec %(vserver)s %(cfg)s "$1"
"""


@contextlib.contextmanager
def comparisons():
    from lab.rigs import vserver_rig as vr
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    os.makedirs(RSCTMP, exist_ok=True)
    rig = vr.Rig("bench")
    try:
        rig.build("pyra-vs-bench1")
        rig.build("pyra-vs-bench2")
        if rig.sim("pyra-vs-bench1", "start").returncode != 0:
            raise RuntimeError("simulator could not start pyra-vs-bench1")
        script_sh = os.path.join(WORK, "script.sh")
        with open(script_sh, "w") as f:
            f.write(SCRIPT_SH)
        os.chmod(script_sh, 0o755)
        pyra = os.path.join(REPO, "agents", "VServer")
        rows = []
        for name, title, interval, expect_a, expect_b in (
                ("pyra-vs-bench1", "running, recurring monitor", 10000, 0, 0),
                ("pyra-vs-bench2", "stopped, probe", None, 7, 1)):
            wrapper = os.path.join(WORK, "vs-" + name)
            with open(wrapper, "w") as f:
                f.write(VS_WRAPPER % {"vserver": vr.VSERVER, "cfg": rig.cfg(name)})
            os.chmod(wrapper, 0o755)
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf",
                   "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
                   "OCF_RESOURCE_INSTANCE": "bench-" + name, "OCF_RESKEY_CRM_meta_timeout": "20000",
                   "HA_RSCTMP": RSCTMP, "LC_ALL": "C"}
            if interval:
                env["OCF_RESKEY_CRM_meta_interval"] = str(interval)
            a_env = dict(env, OCF_RESKEY_name=name, OCF_RESKEY_confdir=rig.confdir,
                         OCF_RESKEY_vserver_cmd=vr.VSERVER)
            b_env = dict(env, OCF_RESKEY_name=name, OCF_RESKEY_file=wrapper)
            rows.append(Comparison("VServer monitor (%s)" % title,
                                   Command([pyra, "monitor"], a_env, expect=(expect_a,)),
                                   Command([script_sh, "status"], b_env, expect=(expect_b,)),
                                   goal=1.0, label_b="script.sh+vs"))
        yield rows
    finally:
        rig.cleanup()
        shutil.rmtree(WORK, ignore_errors=True)
        shutil.rmtree(RSCTMP, ignore_errors=True)

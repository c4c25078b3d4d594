"""The soak loop: episodes of overlapping faults, invariants checked every second, convergence, the report.

One episode: the planner (faults.plan) picks 1-3 faults; a thread injects them at their offsets and heals
each after its duration, while this thread checks the invariants at least once a second. When the last
fault is healed, the cluster must converge within CONVERGE_BOUND seconds: every soak resource Started, no
failed action left once cleaned up, and every workload acknowledging new records. Then the fencing of the
episode is judged, the records on the LVs are checked against every acknowledgement so far, and a quiet gap
(5-20 s, still checked) precedes the next episode.

Invariants (a breach is a violation: the soak stops, keeps every log under OUT/<run>/logs, prints the seed):
  * never two running instances of one guest or container: QEMU processes per guest and LXC monitors of the
    container across every node's namespaces (the live-migrating guest may have two for at most MIGRATION_BOUND
    seconds: source and incoming target); and in the acknowledgement streams, no earlier writer instance
    acknowledges after a later one started (records.AckStream);
  * never one LV active on two nodes (the dm stand-in's per-node state);
  * every acknowledged record present and intact (records.verify; and at every writer restart, resume >= the
    highest acknowledged record);
  * after each episode the cluster converges within CONVERGE_BOUND;
  * a node is fenced when, and only when, the policy requires it: every membership fault whose kind requires a
    fence sees that node fenced; every fence in an episode is explained by a membership fault on that node or a
    failed stop there.
"""
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import threading
import time

from lab import clusterops as co
from lab import pyralab
from lab.soak import faults as F
from lab.soak import records, rig

CONVERGE_BOUND = 300.0   # seconds from the last heal of an episode until everything runs and writes again
MIGRATION_BOUND = 150.0  # seconds two QEMU processes of the live-migrating guest may coexist
OUT = "/var/tmp/pyra-soak"
FENCE_LINE = re.compile(r"^([\d.]+) pid=\d+ action=(\S+) plug=(\S+) off done")
STOP_RESULT = re.compile(r"Result of stop operation for (\S+) on (\S+): (\S+)")


class Violation(Exception):
    pass


class Context:
    """What the faults need from the running soak: the lab, where things run, booting, fencing."""

    def __init__(self, soak):
        self.soak = soak
        self.lab = soak.lab
        self.out = set()  # nodes a membership fault of this episode took out (frozen, cut off, dead)

    def live_nodes(self):
        return [n for n in self.lab.nodes if self.lab.alive(n) and n not in self.out]

    def where(self, rsc):
        try:  # asked of a node that can answer: a frozen or cut-off one would hang or tell its own story
            found = self.lab.where(rsc, viewer=self.lab.viewer(exclude=self.out))
        except pyralab.LabError:
            return None
        found = [n for n in found if self.lab.alive(n)]
        return found[0] if found else None

    def nodes_of(self, *rscs):
        found = {self.where(r) for r in rscs} - {None}
        return sorted(found) or self.live_nodes()

    def busy_nodes(self):
        return self.nodes_of(*rig.RESOURCES)

    def wait_fenced(self, node, timeout=120):
        since = self.soak.episode_wall
        F.wait(lambda: any(n == node and t >= since for t, n in self.soak.fences()), timeout)

    def boot(self, node):
        if not self.lab.alive(node):
            self.lab.start_node(node)
        self.out.discard(node)

    def admin(self, argv, check=False, tries=6):
        """An admin command on a node that can answer (never one this episode took out: a frozen node's tools
        hang, a cut-off one tells its own story), tried again on failure while the cluster elects a new DC
        or fences; the last CompletedProcess (LabError with check when every try failed)."""
        res = None
        for attempt in range(tries):
            try:
                res = co.sh(self.lab, argv, node=self.lab.viewer(exclude=self.out), check=False, timeout=30)
            except pyralab.LabError as err:  # the viewer hung (taken out meanwhile) or none is left
                res = subprocess.CompletedProcess(argv, 124, "", str(err))
            if res.returncode == 0:
                return res
            if attempt < tries - 1:
                time.sleep(2)
        if check:
            raise pyralab.LabError("%s: rc %d: %s" % (" ".join(argv), res.returncode, res.stderr.strip()[:300]))
        return res

    def set_start_timeout(self, rsc, value):
        F.set_start_timeout(self, rsc, value)


class Soak:
    def __init__(self, lab, seed, minutes, out=OUT, kinds=None, say=print):
        self.lab = lab
        self.seed = seed
        self.minutes = minutes
        self.kinds = kinds
        self.say = say
        self.rng = random.Random(seed)
        self.run_dir = os.path.join(out, "%s-seed%s" % (time.strftime("%Y%m%d-%H%M%S"), seed))
        os.makedirs(self.run_dir, exist_ok=True)
        self.t0 = time.monotonic()
        self.timeline = []
        self.streams = {"vm-disk": records.AckStream("vm-disk"), "ct": records.AckStream("ct"),
                        "vm-mig": records.AckStream("vm-mig", has_target=False)}
        self.reported = {k: 0 for k in self.streams}
        self.checks = 0
        self.two_migrating_since = None
        self.episodes = []
        self.violation = None
        self.episode_wall = time.time()
        self.verified = {k: 0 for k in ("vm-disk", "ct")}

    # -- bookkeeping ------------------------------------------------------------------------------------------
    def now(self):
        return time.monotonic() - self.t0

    def event(self, kind, text):
        line = (round(self.now(), 1), kind, text)
        self.timeline.append(line)
        self.say("[soak %7.1fs] %-12s %s" % line)

    def fences(self):
        """[(wall time, node)] of every completed fence so far."""
        out = []
        for line in self.lab.fence_calls():
            m = FENCE_LINE.match(line)
            if m:
                out.append((float(m.group(1)), m.group(3)))
        return out

    def failed_stops(self):
        """{node: count} of stop operations that did not succeed, from every node's pacemaker.log."""
        counts = {}
        for node in self.lab.nodes:
            for line in self.lab.pacemaker_log(node).splitlines():
                m = STOP_RESULT.search(line)
                if m and m.group(3) != "ok" and m.group(1) in rig.RESOURCES:
                    counts[m.group(2)] = counts.get(m.group(2), 0) + 1
        return counts

    # -- invariants -------------------------------------------------------------------------------------------
    def check(self):
        """Every invariant that can be read from the host, once; raises Violation."""
        self.checks += 1
        inst = rig.instances()
        for key in ("vm-disk", "ct"):
            if len(inst[key]) > 1:
                raise Violation("%s runs %d times: pids %s" % (key, len(inst[key]), inst[key]))
        mig = inst["vm-mig"]
        if len(mig) > 2:
            raise Violation("vm-mig runs %d times: pids %s" % (len(mig), mig))
        if len(mig) == 2:
            self.two_migrating_since = self.two_migrating_since or self.now()
            if self.now() - self.two_migrating_since > MIGRATION_BOUND:
                raise Violation("vm-mig has had two QEMU processes for over %.0f s: %s" % (MIGRATION_BOUND, mig))
        else:
            self.two_migrating_since = None
        for vg, nodes in rig.active_lvs(self.lab).items():
            if len(nodes) > 1:
                raise Violation("LV %s/data is active on %s at once" % (vg, " and ".join(nodes)))
        for key, stream in self.streams.items():
            stream.read_file(rig.ACK_FILES[key])
            if stream.violations:
                raise Violation(stream.violations[0])
            if len(stream.instances) > self.reported[key]:
                for writer in stream.instances[self.reported[key]:]:
                    self.event("writer", "%s: instance %s (records acknowledged so far: %d)"
                               % (key, writer[:8], stream.max_acked))
                self.reported[key] = len(stream.instances)

    def checked_sleep(self, seconds, until=None):
        """Sleep ``seconds`` (or until ``until()`` is true), checking the invariants every second."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check()
            if until is not None and until():
                return True
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        return until() if until is not None else True

    # -- convergence ------------------------------------------------------------------------------------------
    def converged(self):
        try:
            return co.running(self.lab, rig.RESOURCES)
        except pyralab.LabError:
            return False

    def converge(self):
        """Seconds until everything runs and writes again, counted from now; Violation past the bound."""
        start = self.now()
        deadline = time.monotonic() + CONVERGE_BOUND
        last_cleanup = None
        next_note = time.monotonic() + 30
        while True:
            if time.monotonic() > deadline:
                raise Violation("no convergence within %.0f s of the last heal:\n%s" % (
                    CONVERGE_BOUND, self.safe(self.lab.mon)))
            self.checked_sleep(3)
            self.reboot_fenced()
            running = self.converged()
            failures = self.safe(lambda: co.failed_actions(self.lab))
            failures = failures if isinstance(failures, list) else []
            if running and not failures:
                break
            if time.monotonic() > next_note:  # say what it is waiting for
                self.event("waiting", self.resource_states())
                next_note = time.monotonic() + 30
            # what an admin does after an incident: clean up what failed (a start that failed everywhere
            # leaves the resource banned until then), at most every 20 s, and each time on the timeline
            if failures and (last_cleanup is None or time.monotonic() - last_cleanup > 20):
                self.event("cleanup", "%d failed action(s): %s" % (len(failures), ", ".join(
                    sorted({"%s %s on %s" % (f.get("op_key", "?"), f.get("status", "?"), f.get("node", "?"))
                            for f in failures}))))
                co.sh(self.lab, ["crm_resource", "--cleanup"], check=False)
                last_cleanup = time.monotonic()
        self.event("running", "every resource Started, no failed action (%.1fs)" % (self.now() - start))
        marks = {k: s.total for k, s in self.streams.items()}

        def stalled():
            return [k for k, s in self.streams.items() if s.total == marks[k]]
        while stalled():
            if time.monotonic() > deadline:
                raise Violation("resources run but %s acknowledge nothing new" % ", ".join(stalled()))
            self.checked_sleep(min(30.0, max(1.0, deadline - time.monotonic())), until=lambda: not stalled())
            if stalled():
                self.event("waiting", "no new acknowledgement from %s" % ", ".join(stalled()))
        return self.now() - start

    def reboot_fenced(self):
        """A fenced node reboots (the lab's fence agent only powers it off): any node that is down when no
        fault holds it down is started again, as its power-on would."""
        for node in self.lab.nodes:
            if not self.lab.alive(node):
                self.event("reboot", "%s (down after a fence)" % node)
                self.lab.start_node(node)

    def resource_states(self):
        """One line: each soak resource's role, node(s) and pending operation, as crm_mon -X shows them."""
        import xml.etree.ElementTree as ET
        res = co.sh(self.lab, ["crm_mon", "-1", "-X"], check=False)
        try:
            root = ET.fromstring(res.stdout)
        except ET.ParseError:
            return "crm_mon: %s" % (res.stderr.strip() or "no XML")[:200]
        out = []
        for r in root.iter("resource"):
            if r.get("id") in rig.RESOURCES:
                nodes = ",".join(n.get("name") for n in r.iter("node")) or "-"
                out.append("%s %s@%s%s" % (r.get("id"), r.get("role"), nodes,
                                            " pending " + r.get("pending") if r.get("pending") else ""))
        return "; ".join(out)

    def safe(self, fn):
        try:
            return fn()
        except (pyralab.LabError, OSError) as err:
            return "(%s)" % err

    def verify_records(self):
        for key in ("vm-disk", "ct"):
            stream = self.streams[key]
            if not stream.acked:
                continue
            blob = rig.read_target(self.lab, key, stream.max_acked)
            if blob is None:
                raise Violation("%s: no node has its LV mounted to read the records from" % key)
            problems = records.verify(stream, blob)
            if problems:
                raise Violation("; ".join(problems))
            self.verified[key] = len(stream.acked)

    # -- fencing ----------------------------------------------------------------------------------------------
    def judge_fencing(self, episode, before_stops):
        fenced = [(t, n) for t, n in self.fences() if t >= self.episode_wall]
        nodes = {n for _, n in fenced}
        stops = self.failed_stops()
        failed_stop_nodes = {n for n, c in stops.items() if c > before_stops.get(n, 0)}
        hit = {f.node for f in episode if f.kind in F.MEMBERSHIP and f.node}
        for f in episode:
            if f.fence == "required" and f.node and f.node not in nodes:
                raise Violation("%s of %s: the node was never fenced" % (f.kind, f.node))
        unexplained = nodes - hit - failed_stop_nodes
        if unexplained:
            raise Violation("fenced without cause: %s (membership faults hit %s; failed stops on %s)" % (
                sorted(unexplained), sorted(hit) or "none", sorted(failed_stop_nodes) or "none"))
        return sorted(nodes), sorted(failed_stop_nodes)

    # -- one episode ------------------------------------------------------------------------------------------
    def episode(self, number):
        plan = F.plan(self.rng, self.kinds)
        ctx = Context(self)
        self.episode_wall = time.time()
        before_stops = self.failed_stops()
        errors = []
        t_start = self.now()
        last_heal = [t_start]

        def drive():
            try:
                pending = sorted(plan, key=lambda f: f.offset)
                heals = []
                t0 = time.monotonic()
                for f in pending:
                    time.sleep(max(0.0, t0 + f.offset - time.monotonic()))
                    f.inject(ctx)
                    if f.kind in F.MEMBERSHIP and f.node:
                        ctx.out.add(f.node)
                    self.event("inject", f.describe() + " for %.0fs" % f.duration)
                    heals.append((time.monotonic() + f.duration, f))
                for at, f in sorted(heals, key=lambda h: h[0]):
                    time.sleep(max(0.0, at - time.monotonic()))
                    f.heal(ctx)
                    self.event("heal", f.describe())
                    last_heal[0] = self.now()
            except Exception as err:  # noqa: BLE001 - a rig failure: reported as such, not as pyra's
                errors.append(err)
        worker = threading.Thread(target=drive, daemon=True)
        worker.start()
        while worker.is_alive():
            self.checked_sleep(1)
        if errors:
            raise errors[0]
        took = self.converge()
        since_heal = self.now() - last_heal[0]
        fenced, failed_stops = self.judge_fencing(plan, before_stops)
        self.verify_records()
        record = {"episode": number, "faults": [f.describe() for f in plan], "kinds": [f.kind for f in plan],
                  "converged_s": round(since_heal, 1), "converge_wait_s": round(took, 1), "fenced": fenced,
                  "failed_stops": failed_stops, "start_s": round(t_start, 1)}
        self.episodes.append(record)
        self.event("converged", "episode %d in %.1fs after the last heal (fenced: %s)"
                   % (number, since_heal, ", ".join(fenced) or "none"))

    # -- the whole run ----------------------------------------------------------------------------------------
    def run(self):
        self.event("start", "seed %s, %s minutes, output %s" % (self.seed, self.minutes, self.run_dir))
        try:
            self.converge()
            self.verify_records()
            number = 0
            end = self.t0 + self.minutes * 60
            while time.monotonic() < end:
                number += 1
                self.episode(number)
                self.checked_sleep(self.rng.uniform(5, 20))
            self.verify_records()
        except Violation as err:
            self.violation = str(err)
            self.event("VIOLATION", self.violation)
            self.keep_logs()
        finally:
            self.write()
        return self.violation is None

    def keep_logs(self):
        logs = os.path.join(self.run_dir, "logs")
        os.makedirs(logs, exist_ok=True)
        for node in self.lab.nodes:
            d = self.lab.ndir(node)
            for sub in ("var-log-pacemaker", "var-log-corosync", "var-log-libvirt"):
                if os.path.isdir(f"{d}/{sub}"):
                    shutil.copytree(f"{d}/{sub}", f"{logs}/{node}/{sub}", dirs_exist_ok=True)
        if os.path.isdir(rig.ACKS):
            shutil.copytree(rig.ACKS, f"{logs}/acks", dirs_exist_ok=True)
        with open(f"{logs}/crm_mon.txt", "w", encoding="utf-8") as f:
            f.write(str(self.safe(self.lab.mon)))
        with open(f"{logs}/fence-calls.log", "w", encoding="utf-8") as f:
            f.write("\n".join(self.lab.fence_calls()) + "\n")

    def summary(self):
        kinds = {}
        for ep in self.episodes:
            for kind in ep["kinds"]:
                kinds.setdefault(kind, []).append(ep["converged_s"])
        table = {k: {"faults": len(v), "converge_median_s": round(statistics.median(v), 1),
                     "converge_max_s": round(max(v), 1)} for k, v in sorted(kinds.items())}
        return {
            "seed": self.seed, "minutes": self.minutes, "elapsed_s": round(self.now(), 1),
            "episodes": len(self.episodes), "faults_per_kind": table,
            "invariant_checks": self.checks, "violation": self.violation,
            "records": {k: {"acknowledged": s.total, "highest": s.max_acked, "writers": len(s.instances),
                            "torn_lines": s.torn, "verified": self.verified.get(k)}
                        for k, s in self.streams.items()},
            "bounds_s": {"converge": CONVERGE_BOUND, "two_qemu_while_migrating": MIGRATION_BOUND},
        }

    def table(self):
        s = self.summary()
        lines = ["%-18s %6s %10s %10s" % ("fault kind", "count", "conv med", "conv max")]
        for kind, row in s["faults_per_kind"].items():
            lines.append("%-18s %6d %9.1fs %9.1fs" % (kind, row["faults"], row["converge_median_s"],
                                                       row["converge_max_s"]))
        lines.append("episodes %d, invariant checks %d, violations %d" % (
            s["episodes"], s["invariant_checks"], 0 if s["violation"] is None else 1))
        for key, row in s["records"].items():
            lines.append("%-8s acknowledged %5d (highest %5d, %d writer instances, %s verified on disk)" % (
                key, row["acknowledged"], row["highest"], row["writers"],
                row["verified"] if row["verified"] is not None else "n/a:"))
        return "\n".join(lines)

    def write(self):
        with open(os.path.join(self.run_dir, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(dict(self.summary(), episodes_detail=self.episodes), f, indent=1)
        with open(os.path.join(self.run_dir, "timeline.json"), "w", encoding="utf-8") as f:
            json.dump(self.timeline, f, indent=0)
        with open(os.path.join(self.run_dir, "timeline.txt"), "w", encoding="utf-8") as f:
            f.write("".join("%8.1fs %-12s %s\n" % line for line in self.timeline))
        text = self.table()
        with open(os.path.join(self.run_dir, "summary.txt"), "w", encoding="utf-8") as f:
            f.write(text + "\n")
        self.say(text)
        if self.violation:
            self.say("VIOLATION (seed %s, replay with SOAK_SEED=%s): %s\nlogs kept in %s"
                     % (self.seed, self.seed, self.violation, self.run_dir))

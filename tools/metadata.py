#!/usr/bin/python3
"""Golden metadata: `write` regenerates metadata/<Agent>.xml (OCF 1.1 form) from every agent's schema;
`check` exits 1 and names the stale files when one differs from what the agent prints now."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENTS = os.path.join(REPO, "agents")
GOLDEN = os.path.join(REPO, "metadata")


def agents():
    return sorted(n for n in os.listdir(AGENTS) if os.access(os.path.join(AGENTS, n), os.X_OK))


def render(agent, version="1.1"):
    major, minor = version.split(".")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf",
           "OCF_RA_VERSION_MAJOR": major, "OCF_RA_VERSION_MINOR": minor}
    return subprocess.run([os.path.join(AGENTS, agent), "meta-data"], env=env, check=True,
                          stdout=subprocess.PIPE, timeout=30).stdout.decode()


def main(mode):
    os.makedirs(GOLDEN, exist_ok=True)
    stale = []
    for agent in agents():
        path = os.path.join(GOLDEN, agent + ".xml")
        text = render(agent)
        try:
            with open(path) as handle:
                current = handle.read()
        except FileNotFoundError:
            current = None
        if current != text:
            stale.append(agent)
            if mode == "write":
                with open(path, "w") as handle:
                    handle.write(text)
    if mode == "check" and stale:
        print("stale golden metadata (run `make metadata`): " + ", ".join(stale))
        return 1
    if mode == "write":
        print("metadata: %d agent(s), %d updated" % (len(agents()), len(stale)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "check"))

#!/usr/bin/python3
"""Man pages ocf_pyra_<Agent>.7, generated from each agent's metadata (itself generated from its schema).

Usage: manpages.py OUTDIR. Parses the OCF 1.1 metadata with the standard library's ElementTree.
"""

import os
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metadata  # noqa: E402


def roff(text):
    """Escape text for roff: backslashes, and lines starting with '.' or "'"."""
    text = " ".join((text or "").split()) if "\n" not in (text or "").strip() else (text or "").strip()
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def page(agent, xml_text):
    root = ET.fromstring(xml_text)
    name = root.get("name")
    version = root.get("version")
    out = ['.TH OCF_PYRA_%s 7 "%s" "pyra %s" "OCF resource agents"' % (name.upper(), time.strftime("%Y-%m-%d",
           time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None)), version)]
    out += [".SH NAME", "ocf_pyra_%s \\- %s" % (name, roff(root.findtext("shortdesc")))]
    out += [".SH SYNOPSIS", "\\fB%s\\fR [start | stop | monitor | meta\\-data | validate\\-all%s]" % (
        name, "".join(" | " + roff(a.get("name")) for a in root.iter("action")
                      if a.get("name") not in ("start", "stop", "monitor", "meta-data", "validate-all")))]
    out += [".SH DESCRIPTION", roff(root.findtext("longdesc"))]
    out += [".SH PARAMETERS"]
    for param in root.iter("parameter"):
        content = param.find("content")
        flags = []
        if param.get("required") == "1":
            flags.append("required")
        if param.get("unique") == "1":
            flags.append("unique")
        if param.get("reloadable") == "1":
            flags.append("reloadable")
        if param.find("deprecated") is not None:
            flags.append("deprecated")
        kind = content.get("type")
        if kind == "select":
            kind = "|".join(o.get("value") for o in content.iter("option"))
        default = content.get("default")
        head = "\\fB%s\\fR (%s%s%s)" % (roff(param.get("name")), roff(kind),
                                         ", default: " + roff(default) if default not in (None, "") else "",
                                         ", " + ", ".join(flags) if flags else "")
        out += [".TP", head, roff(param.findtext("shortdesc")) + ".", ".br", roff(param.findtext("longdesc"))]
    out += [".SH OPERATIONS"]
    for action in root.iter("action"):
        extra = ""
        if action.get("interval"):
            extra += ", interval %s" % action.get("interval")
        if action.get("depth"):
            extra += ", depth %s" % action.get("depth")
        out += [".TP", "\\fB%s\\fR" % roff(action.get("name")), "timeout %s%s" % (action.get("timeout"), extra)]
    out += [".SH EXAMPLE", ".nf", "crm configure primitive %s ocf:pyra:%s params ..." % (name.lower(), name),
            "pcs resource create %s ocf:pyra:%s ..." % (name.lower(), name), ".fi"]
    out += [".SH SEE ALSO", "\\fBcrm\\fR(8), \\fBpcs\\fR(8), \\fBocf\\-tester\\fR(8)"]
    return "\n".join(out) + "\n"


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    for agent in metadata.agents():
        with open(os.path.join(outdir, "ocf_pyra_%s.7" % agent), "w") as handle:
            handle.write(page(agent, metadata.render(agent)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/man"))

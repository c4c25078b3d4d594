#!/usr/bin/python3
"""Man pages ocf_pyra_<Agent>.7, generated from each agent's metadata (itself generated from its schema), and
pyra.8, generated from the argparse parser of the ``pyra`` command (``pyra.cli.main.build_parser()``: every
subcommand and option) with the exit codes of pyra.cli.main's docstring.

Usage: manpages.py OUTDIR. Parses the OCF 1.1 metadata with the standard library's ElementTree.
"""

import os
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metadata  # noqa: E402

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")


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


def _date():
    return time.strftime("%Y-%m-%d", time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None))


def _subcommands(parser):
    """[(name, help, subparser)] of an argparse parser's subcommands, in the order they were added."""
    import argparse
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias
                    continue
                seen.add(id(sub))
                out.append((name, helps.get(name) or "", sub))
    return out


def _usage(parser):
    return " ".join(parser.format_usage().split())[len("usage: "):].replace(" [-h]", "")


def _options(parser):
    """roff .TP entries for the options and positional arguments of one (sub)parser."""
    import argparse
    out = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            metavar = ""
            if action.nargs != 0:
                metavar = action.metavar or ("{%s}" % ",".join(action.choices) if action.choices else
                                             action.dest.upper())
                if isinstance(metavar, tuple):
                    metavar = " ".join(metavar)
            head = ", ".join("\\fB%s\\fR" % roff(o) for o in action.option_strings)
            if metavar:
                head += " \\fI%s\\fR" % roff(metavar)
        else:
            head = "\\fI%s\\fR" % roff(action.metavar or ("{%s}" % ",".join(action.choices) if action.choices
                                                        else action.dest))
        text = action.help or ""
        if "%(default)" in text:
            text = text % {"default": action.default}
        out += [".TP", head, roff(text)]
    return out


def exit_codes():
    """[(code, meaning)] from pyra.cli.main's docstring ("Exit codes ...:" then "N meaning; N meaning...")."""
    import re
    from pyra.cli import main as cli
    doc = cli.__doc__ or ""
    block = doc.split("Exit codes", 1)[1].split(":", 1)[1] if "Exit codes" in doc else ""
    block = " ".join(block.split())
    out = []
    for part in re.split(r";\s*", block):
        m = re.match(r"^(\d+)\s+(.*?)\.?$", part.strip())
        if m:
            out.append((m.group(1), m.group(2)))
    return out


EXAMPLES = [
    ("Where every pyra guest runs, and one guest's console from any node", [
        "pyra list", "pyra vm gum where", "pyra vm gum console"]),
    ("A domain XML from a few options, checked, then made a cluster resource (its LV disks grouped before it)", [
        "pyra create-domxml \\-\\-name gum \\-\\-cpus 16 \\-\\-mem 8g \\-\\-ovs vh \\-\\-vlan 150 \\e",
        "    \\-\\-disk /dev/vm/gum /dev/data/gum \\-\\-output /etc/pyra/gum.xml",
        "pyra domadd /etc/pyra/gum.xml \\-\\-dry\\-run", "pyra domadd /etc/pyra/gum.xml"]),
    ("Live-migrate a guest, and empty a node for maintenance", [
        "pyra vm gum migrate n2", "pyra node n1 maintenance on"]),
]


def pyra_page():
    """pyra.8 from the parser of the pyra command."""
    if LIB not in sys.path:
        sys.path.insert(0, LIB)
    from pyra import __version__
    from pyra.cli.main import build_parser
    parser = build_parser()
    out = ['.TH PYRA 8 "%s" "pyra %s" "System Administration"' % (_date(), __version__)]
    out += [".SH NAME", "pyra \\- operate pyra's guests and containers in a Pacemaker cluster"]
    out += [".SH SYNOPSIS", "\\fBpyra\\fR [\\fB\\-\\-version\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]"]
    for name, _help, sub in _subcommands(parser):
        out += [".br", "\\fBpyra %s\\fR" % roff(name)]
    out += [".SH DESCRIPTION", roff(parser.description or ""),
            "It acts only on pyra resources (ocf:pyra:*) and says so when asked about anything else. Every "
            "failure is one line on stderr and an exit status below; \\fBpyra \\fICOMMAND\\fB \\-\\-help\\fR "
            "shows the options of each command."]
    out += [".SH COMMANDS"]
    for name, help_text, sub in _subcommands(parser):
        out += [".SS %s" % roff(name), "\\fB%s\\fR" % roff(_usage(sub)), ".PP",
                roff(sub.description or help_text)]
        out += _options(sub)
        for child, child_help, child_parser in _subcommands(sub):
            out += [".TP", "\\fB%s\\fR" % roff(_usage(child_parser)), roff(child_parser.description or child_help)]
            options = _options(child_parser)
            if len(options) > 3 or (options and not options[1].startswith("\\fI")):
                out += [".RS"] + options + [".RE"]
        if sub.epilog:
            out += [".PP", roff(sub.epilog)]
    out += [".SH EXIT STATUS"]
    for code, meaning in exit_codes():
        out += [".TP", "\\fB%s\\fR" % code, roff(meaning)]
    out += [".SH EXAMPLES"]
    for what, lines in EXAMPLES:
        out += [".PP", roff(what) + ":", ".nf", ".RS"] + lines + [".RE", ".fi"]
    out += [".SH FILES", "/usr/share/bash\\-completion/completions/pyra: completion of commands, options and "
            "resource names."]
    out += [".SH SEE ALSO", "\\fBocf_pyra_TransientDomain\\fR(7), \\fBocf_pyra_LVMFilesystem\\fR(7), "
            "\\fBcrm_mon\\fR(8), \\fBcibadmin\\fR(8), \\fBvirsh\\fR(1)"]
    return "\n".join(out) + "\n"


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    for agent in metadata.agents():
        with open(os.path.join(outdir, "ocf_pyra_%s.7" % agent), "w") as handle:
            handle.write(page(agent, metadata.render(agent)))
    with open(os.path.join(outdir, "pyra.8"), "w") as handle:
        handle.write(pyra_page())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/man"))

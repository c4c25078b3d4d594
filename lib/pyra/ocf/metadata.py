"""Render an agent's metadata XML from its schema and actions.

Two forms, chosen by the OCF version the caller announces:
- 1.1 (Pacemaker 2.1 sets ``OCF_RA_VERSION_MAJOR/MINOR``): ``<version>1.1</version>``, ``reloadable``,
  ``unique-group``, ``select`` with options, ``<deprecated>``, ``reload-agent``; valid against the OCF 1.1
  RelaxNG schema (which has no ``time`` type: durations are strings there).
- 1.0 (ocf-tester and older callers say nothing): valid against ``ra-api-1.dtd`` with its DOCTYPE, so the
  1.1-only features are folded into the descriptions and ``reload-agent`` is left out.
Every text and attribute is escaped. Plain string building: no XML library is imported on this path.
"""

from pyra.ocf import params as P

_ONE_ZERO_ACTIONS = frozenset(("start", "stop", "recover", "monitor", "restart", "migrate_to", "migrate_from",
                               "promote", "demote", "notify", "status", "reload", "meta-data", "usage",
                               "methods", "validate-all"))


def escape(text, quote=True):
    """Escape text for XML character data or a double-quoted attribute; drop characters XML forbids."""
    text = str(text)
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == '"' and quote:
            out.append("&quot;")
        elif code < 0x20 and ch not in "\t\n\r":
            continue
        elif 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            continue
        else:
            out.append(ch)
    return "".join(out)


def _seconds(value):
    return P.format_time(value)


def render(agent, version=(1, 1)):
    """The metadata document for ``agent`` (an Agent class or instance) in OCF ``version`` (1,0) or (1,1)."""
    v11 = tuple(version) >= (1, 1)
    lines = ['<?xml version="1.0"?>']
    if not v11:
        lines.append('<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">')
    lines.append('<resource-agent name="%s" version="%s">' % (escape(agent.name), escape(agent.version)))
    lines.append("<version>%s</version>" % ("1.1" if v11 else "1.0"))
    lines.append('<longdesc lang="en">\n%s\n</longdesc>' % escape(agent.longdesc.strip(), quote=False))
    lines.append('<shortdesc lang="en">%s</shortdesc>' % escape(agent.shortdesc.strip(), quote=False))
    lines.append("<parameters>")
    for param in agent.schema:
        lines.extend(_parameter(param, v11))
    lines.append("</parameters>")
    lines.append("<actions>")
    for action in agent.all_actions():
        if not v11 and action.name not in _ONE_ZERO_ACTIONS:
            continue
        attrs = ['name="%s"' % escape(action.name), 'timeout="%s"' % _seconds(action.timeout)]
        if action.interval is not None:
            attrs.append('interval="%s"' % _seconds(action.interval))
        if action.depth is not None:
            attrs.append('depth="%d"' % action.depth)
        if action.role:
            attrs.append('role="%s"' % escape(action.role))
        lines.append("<action %s />" % " ".join(attrs))
    lines.append("</actions>")
    lines.append("</resource-agent>")
    return "\n".join(lines) + "\n"


def _parameter(param, v11):
    attrs = ['name="%s"' % escape(param.name)]
    if v11 and param.unique_group:
        attrs.append('unique-group="%s"' % escape(param.unique_group))
    attrs.append('unique="%d"' % (1 if param.unique else 0))
    attrs.append('required="%d"' % (1 if param.required else 0))
    if v11 and param.reloadable:
        attrs.append('reloadable="1"')
    if v11 and param.private:
        # Pacemaker's extension (kept out of digests and logs); not in the OCF 1.1 schema.
        attrs.append('private="1"')
    out = ["<parameter %s>" % " ".join(attrs)]
    longdesc = param.longdesc.strip()
    notes = []
    if param.deprecated:
        replacement = param.deprecated if isinstance(param.deprecated, str) else None
        if v11:
            out.append("<deprecated>")
            if replacement:
                out.append('<replaced-with name="%s" />' % escape(replacement))
            out.append('<desc lang="en">%s</desc>' % escape(
                "Use %s instead." % replacement if replacement else "Do not use.", quote=False))
            out.append("</deprecated>")
        else:
            notes.append("Deprecated%s." % (": use %s instead" % replacement if replacement else ""))
    if not v11 and param.type == P.SELECT:
        notes.append("Allowed values: %s." % ", ".join(param.choices))
    if not v11 and param.reloadable:
        notes.append("Can be changed without a restart (reload-agent).")
    if param.type == P.TIME:
        notes.append("A duration: a number of seconds, or with a unit (ms, s, min, h).")
    if param.type == P.LIST:
        notes.append("A list: words separated by blanks.")
    notes.extend(param.notes())
    if notes:
        longdesc = longdesc + "\n" + " ".join(notes)
    out.append('<longdesc lang="en">\n%s\n</longdesc>' % escape(longdesc, quote=False))
    out.append('<shortdesc lang="en">%s</shortdesc>' % escape(param.shortdesc.strip(), quote=False))
    ctype = param.type
    if ctype == P.SELECT and not v11:
        ctype = P.STRING
    elif (ctype == P.TIME and v11) or ctype in (P.FLOAT, P.LIST):
        ctype = P.STRING
    default = param.default_text()
    content = '<content type="%s"' % ctype
    if default is not None:
        content += ' default="%s"' % escape(default)
    if ctype == P.SELECT:
        out.append(content + ">")
        for choice in param.choices:
            out.append('<option value="%s" />' % escape(choice))
        out.append("</content>")
    else:
        out.append(content + " />")
    out.append("</parameter>")
    return out

"""libvirt's own RelaxNG schema as the judge of a domain XML, in process.

``virt-xml-validate`` is libxml2's RelaxNG validator run over ``/usr/share/libvirt/schemas/domain.rng``
(shipped with libvirt0); lxml drives the same libxml2 code, so a file is refused here exactly when libvirt's
tool refuses it, with libxml2's words. Loading the schema costs a few hundred milliseconds: the agent checks a
file only when it changed since the last check on this node (``stamp``), never on the monitor path.
"""

import os

DOMAIN_RNG = "/usr/share/libvirt/schemas/domain.rng"


class SchemaUnavailable(Exception):
    """No schema to judge by on this node (libvirt's schemas or python3-lxml are not installed)."""


def stamp(path, rng=DOMAIN_RNG):
    """What identifies this version of the file and of the schema (changes when either changes); None when
    the file cannot be stat'ed."""
    try:
        st = os.stat(path)
        rs = os.stat(rng)
    except OSError:
        return None
    return "%s:%d:%d:%d:%d:%d" % (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                                  rs.st_mtime_ns)


def check(data, rng=DOMAIN_RNG):
    """None when the domain XML ``data`` (bytes) is valid for this node's libvirt, else libvirt's (libxml2's)
    words for the first problem. Raises SchemaUnavailable when it cannot judge."""
    if not os.path.isfile(rng):
        raise SchemaUnavailable("libvirt's schema %s is not installed" % rng)
    try:
        from lxml import etree
    except ImportError:
        raise SchemaUnavailable("python3-lxml is not installed") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        schema = etree.RelaxNG(etree.parse(rng))
        doc = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, etree.RelaxNGParseError, OSError) as err:
        raise SchemaUnavailable("cannot load %s: %s" % (rng, err)) from None
    if schema.validate(doc):
        return None
    errors = [e for e in schema.error_log if e.message]
    if not errors:
        return "does not validate against %s" % rng
    first = errors[0]
    return "line %d: %s" % (first.line, first.message) if first.line else first.message

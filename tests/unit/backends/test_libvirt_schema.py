"""pyra.backends.libvirt_schema: libvirt's RelaxNG schema judges a domain XML in process, as virt-xml-validate."""

import os

import pytest

from pyra.backends import libvirt_schema as S

pytestmark = pytest.mark.skipif(not os.path.isfile(S.DOMAIN_RNG), reason="libvirt's schemas are not installed")

GOOD = b"<domain type='qemu'><name>g</name><memory>1024</memory><os><type>hvm</type></os></domain>"


@pytest.mark.parametrize("xml,words", [
    (b"<domain type='bogus'><name>g</name><memory>1024</memory><os><type>hvm</type></os></domain>",
     "Element domain failed to validate"),
    (b"<domain type='qemu'><name>g</name><memory unit='KiB'>lots</memory><os><type>hvm</type></os></domain>",
     "doesn't allow value 'lots'"),
    (b"<domain type='qemu'><name>g</name><memory>1</memory><os><type>hvm</type></os><devices><disk type='file'>"
     b"<source file='/x' bogus='1'/><target dev='vda'/></disk></devices></domain>", "Extra element devices"),
])
def test_what_libvirt_refuses_is_refused_with_its_words(xml, words):
    assert S.check(GOOD) is None
    problem = S.check(xml)
    assert problem and words in problem, problem


def test_stamp_changes_with_the_file(tmp_path):
    path = tmp_path / "g.xml"
    path.write_bytes(GOOD)
    first = S.stamp(str(path))
    assert first and S.stamp(str(path)) == first
    path.write_bytes(GOOD + b"\n")
    assert S.stamp(str(path)) != first
    assert S.stamp(str(tmp_path / "missing.xml")) is None


def test_no_schema_means_no_verdict(tmp_path):
    with pytest.raises(S.SchemaUnavailable):
        S.check(GOOD, rng=str(tmp_path / "nope.rng"))

"""TransientDomain's driver rule (pyra.agents.transientdomain.driver): libvirt-LXC from the XML's type, else
from the hypervisor URI."""

from types import SimpleNamespace

import pytest

from pyra.agents.transientdomain.driver import is_lxc, uri_driver
from pyra.backends.libvirt_xml import DomainConfig


@pytest.mark.parametrize("uri,driver", [
    ("lxc:///system", "lxc"), ("lxc+unix:///system?socket=/run/x/libvirt-sock", "lxc"), ("LXC:///", "lxc"),
    ("qemu:///system", "qemu"), ("qemu+ssh://root@n1/system", "qemu"), ("lxc:", "lxc"), ("", ""),
])
def test_uri_driver(uri, driver):
    assert uri_driver(uri) == driver


def xml(kind):
    return DomainConfig("<domain type='%s'><name>c1</name></domain>" % kind)


def test_the_xml_type_decides_when_known():
    assert is_lxc(SimpleNamespace(hypervisor="qemu:///system"), xml("lxc"))
    assert not is_lxc(SimpleNamespace(hypervisor="lxc:///system"), xml("kvm"))


def test_the_uri_decides_without_xml():
    assert is_lxc(SimpleNamespace(hypervisor="lxc:///system"))
    assert not is_lxc(SimpleNamespace(hypervisor="qemu:///system"))
    assert is_lxc(SimpleNamespace(hypervisor="lxc:///system"), DomainConfig("<domain><name>c1</name></domain>"))

"""Helpers the tests share: test images, sites, a second libvirt host, loopback servers."""

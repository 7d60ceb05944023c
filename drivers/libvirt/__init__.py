"""The libvirt engine driver and the parts of libvirt it uses: domains, networks, storage, consoles, the guest agent."""

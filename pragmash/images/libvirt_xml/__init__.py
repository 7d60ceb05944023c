"""libvirt XML made from a vc-in template: a node's domain (identity, sizing) and a VC's private network."""

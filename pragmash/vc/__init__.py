"""What a site and a VC are made of: site config, repository, vc-in.xml, vc-out.xml, hardened XML."""

"""The site's hosts behind one door: capacity, one connection per host, disks on pool hosts, consoles."""

"""The files a VC is described by and described to: vc-in.xml, vc-out.xml, keys, sums, names, hardened XML."""

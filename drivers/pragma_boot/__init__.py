"""A site's pragma_boot driver folders of executables, used unchanged: as distro drivers or as the engine."""

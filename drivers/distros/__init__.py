"""The bundled distro drivers: what a distro's images need before they boot (vc_driver)."""

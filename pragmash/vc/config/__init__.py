"""The site config (site.toml) section by section, and pragma_boot's site configuration imported into one."""

"""The object model (L4): classes built from schema specs, listings, files, services, connect()."""

"""The server's XSD data model (L3): XSD bytes → plain class specs; no network of its own."""

"""Generic bounded caches (L0): a TTL+LRU mapping and a block reader; no HTTP, no model."""

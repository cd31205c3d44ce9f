"""Generic bounded caches (L0): a TTL+LRU mapping, the one ranged block reader and its memory budget; no HTTP, no model."""

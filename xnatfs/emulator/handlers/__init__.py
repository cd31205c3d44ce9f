"""REST handlers, one module per resource family; each exposes ``routes() -> list[Rule]``."""

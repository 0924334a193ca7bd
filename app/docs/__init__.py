"""Documents generated from a migrated database: the API reference (python -m app docs)."""

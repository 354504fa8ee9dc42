"""Event sources: each turns something outside into faasflow Events."""

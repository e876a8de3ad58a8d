"""Helpers behind create_tables.py and etl.py."""

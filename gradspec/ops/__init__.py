"""The op table: every op gradspec knows, defined once."""

"""The op table: every op gradspec knows, defined once."""

# The table first: its rows of special functions (special_rows) are built from the table's classes.
from gradspec.ops import table as _table  # noqa: F401

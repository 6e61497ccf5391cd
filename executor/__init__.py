"""executor (see ../shared/DESIGN.md)."""

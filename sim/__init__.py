"""sim (see ../shared/DESIGN.md)."""

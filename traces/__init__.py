"""traces (see ../shared/DESIGN.md)."""

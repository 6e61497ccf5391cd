"""policies (see ../shared/DESIGN.md)."""

"""temporal: see DESIGN.md."""

"""train: see DESIGN.md."""

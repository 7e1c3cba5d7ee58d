"""opendata: see DESIGN in docs/architecture.md (not built yet)."""

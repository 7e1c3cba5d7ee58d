"""Governance: the bus registry and data stewardship (inventory, classification, PII
screening, four-eyes workflow, audit). Not built yet; see docs/architecture.md."""

"""Open data: Frictionless validation, publishing to CKAN, withdrawal and the consumer client.
Not built yet; see docs/architecture.md."""

"""Feature flags for services: an OpenFeature provider backed by the database's evaluation."""

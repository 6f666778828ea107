"""Live mode: Kafka micro-batches into the store, features from saved kernel state (see runner)."""

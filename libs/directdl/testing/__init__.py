"""Test support: real brokers for integration tests, waiting helpers."""

"""Test support, not shipped: real brokers, servers and certificates, and waiting helpers."""

"""The certificate service's adapters: its tables and repositories."""

"""The registration service's adapters: its own tables and repositories."""

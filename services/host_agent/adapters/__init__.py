"""The host agent's adapters: its own tables for download jobs and the pool's contents."""

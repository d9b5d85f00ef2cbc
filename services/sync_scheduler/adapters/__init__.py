"""The sync-scheduler's adapters: its projections of zones, hosts and certificates, and runs."""

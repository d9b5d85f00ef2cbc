"""The sync-scheduler's domain: deciding what each host lacks or should no longer hold."""

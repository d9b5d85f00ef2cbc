"""The sync-scheduler: brings hosts' trust stores in line with the certificates of their zone."""

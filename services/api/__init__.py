"""The CloudStack API gateway: CloudStack's HTTP API over directdl's bus."""

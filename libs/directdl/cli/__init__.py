"""The `directdl` command: a client of the message contract, not a service."""

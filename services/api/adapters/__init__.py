"""The gateway's adapters: its tables, repositories, the bus callers and the HTTP server."""

"""directdl's shared code: message contracts, the bus, the service runtime, CLI, test fixtures."""

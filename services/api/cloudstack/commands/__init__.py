"""The CloudStack APIs the gateway serves, a module per family, each a list of `Api`."""

"""CloudStack's side of the gateway: signatures, parameters, response shapes."""

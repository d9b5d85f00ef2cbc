"""The certificate service's domain: pure rules about certificates and aliases, no I/O."""

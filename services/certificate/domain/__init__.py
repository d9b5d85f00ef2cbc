"""The certificate service's domain: certificates, aliases and operations on hosts, no I/O."""

"""The registration service's domain: pure rules about templates, no I/O."""

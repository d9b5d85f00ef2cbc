"""The certificate service: owns uploaded certificates and where they are installed."""

"""The registration service: owns the template catalogue and deploys templates to KVM hosts."""

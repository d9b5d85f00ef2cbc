"""The host agent: one per KVM host; downloads templates straight into its primary storage."""

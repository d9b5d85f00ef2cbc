"""The public message contract: envelopes, replies and one module per message family."""

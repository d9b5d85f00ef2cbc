"""Downloaders by protocol, the sink that hashes and writes in one pass, and the retry loop."""

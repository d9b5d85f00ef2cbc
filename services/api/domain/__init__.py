"""The gateway's domain: API keys and async jobs, with no broker and no database."""

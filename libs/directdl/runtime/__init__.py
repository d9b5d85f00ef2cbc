"""What every service shares: settings, logging, database, health server and the run loop."""

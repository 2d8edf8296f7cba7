"""The use cases, shared by the daemon's edges and the command line (see docs/architecture.md)."""

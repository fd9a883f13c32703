"""Services and their lifecycle: states, operations, and the infrastructure outbox."""

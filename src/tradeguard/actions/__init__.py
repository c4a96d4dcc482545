"""What decisions cause: close commands, alerts and their delivery, the audit entries."""

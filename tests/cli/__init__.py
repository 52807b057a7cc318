"""The CLI end to end against local mode."""

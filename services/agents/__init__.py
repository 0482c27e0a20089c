"""The agents service."""

"""Werkplaats intake service."""

"""Werkplaats scheduling service."""

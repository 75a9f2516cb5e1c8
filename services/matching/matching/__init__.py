"""Werkplaats matching service."""

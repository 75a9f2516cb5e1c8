"""Werkplaats shared library: what every service uses to talk, store and serve."""

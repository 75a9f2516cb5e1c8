"""The local default: an embedded broker, an SMTP sink, the three services and a demo batch."""

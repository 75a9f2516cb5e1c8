"""Werkplaats portal: server-rendered pages for entrepreneurs, institutions and coordinators.

The portal owns no business data: every page reads and writes through the three services' public HTTP APIs
with the signed-in person's own short-lived tokens, held in a server-side session."""

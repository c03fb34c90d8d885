"""Developer tools (not part of the installed package): notebook output checks, the real-browser check."""

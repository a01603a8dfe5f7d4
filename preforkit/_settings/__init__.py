"""The settings' declaration and value parsers (private; ``preforkit.config`` is the facade)."""

"""What happens inside: every layer captured, its geometry, units explained, the layer table."""

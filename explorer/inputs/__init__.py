"""What goes in: canvas strokes, uploads and photos, prepared as each model expects."""

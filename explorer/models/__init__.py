"""Models: the zoo, the shipped digit nets, weights, where they run, and training."""

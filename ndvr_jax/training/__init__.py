"""The shared training rails: one loop for every model, triplet losses, Orbax checkpoints, metric
writers."""

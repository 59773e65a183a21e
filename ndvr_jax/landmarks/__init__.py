"""Audio landmark fingerprints: pairs of spectral peaks hashed with their time gap, matched by
counting hashes that agree on one time offset. Robust where segment embeddings are weak (sound
mixed over the copy, telephone band, radio chains); fused with AuSiL's similarity."""

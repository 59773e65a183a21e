"""AuSiL: audio similarity learning over segment features (PCA whitening, attention, similarity
CNN, Chamfer), its training, scoring and demo experiment."""

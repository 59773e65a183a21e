"""Deep hashing: frame features -> n-bit video codes, trained with classification + triplet
losses, retrieved by Hamming distance."""

"""Regional visual similarity: Chamfer over frame regions (ViSiL-style, picture-in-picture)."""

"""TinvNN: transformation-invariant initial representations (modified classical MDS) for any backbone."""

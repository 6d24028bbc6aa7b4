"""Object pose tracking: registration of the segmented object points against the object's model (pure core)."""

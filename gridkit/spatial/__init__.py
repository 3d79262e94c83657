"""In-memory spatial indexes used by gridkit's bulk services (pure numpy + shapely)."""

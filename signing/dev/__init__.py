"""Development helpers: never imported by production modules."""

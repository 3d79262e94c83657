"""Incidents: categories (data, seeded from gridkit/standard/categories.csv) and cases."""

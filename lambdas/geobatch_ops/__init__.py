"""GeoBatch Lambda handlers."""

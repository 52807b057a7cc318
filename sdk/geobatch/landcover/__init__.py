"""Land-cover demo: synthetic Sentinel-2 scenes, real COG/STAC loading, KMeans classification, products.

Submodules are imported on demand (``geobatch.landcover.job`` etc.) so that importing the package stays cheap
inside GeoBatch jobs.
"""

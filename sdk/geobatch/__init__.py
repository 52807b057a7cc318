"""GeoBatch: any Python function, mapped over many inputs on AWS Batch, with two calls."""

"""GeoBatch worker: the SQS consumer loop that runs user jobs (AWS Batch container or local subprocess)."""

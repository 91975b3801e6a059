"""The Spark Structured Streaming stage: ``tweets.raw`` -> parse -> NLP -> parquet, topics, replies.

Entry point: :func:`replyflow.stream.job.run_stream` (``replyflow stream``).  Imported lazily by
the CLI because PySpark is heavy; design and semantics in docs/STREAM.md.
"""

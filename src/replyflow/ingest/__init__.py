"""replyflow.ingest stage."""

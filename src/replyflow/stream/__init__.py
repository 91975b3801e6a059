"""replyflow.stream stage."""

"""replyflow.web stage."""

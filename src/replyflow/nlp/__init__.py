"""replyflow.nlp stage."""

"""replyflow.kafka stage."""

"""replyflow.reply stage."""

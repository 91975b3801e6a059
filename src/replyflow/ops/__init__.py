"""Operating replyflow: running its services in the background (``replyflow up``/``down``)."""

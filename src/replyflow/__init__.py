"""replyflow: answers customers on X automatically.

Stages, one package each: ``ingest`` (X API / replay -> Kafka), ``kafka`` (local broker,
topics), ``nlp`` (cleaning, models, NER, training), ``stream`` (Spark job), ``reply``
(ticket store, API, sender), ``web`` (agent dashboard).  ``cli`` is a thin layer on top.
"""

__version__ = "0.1.0"

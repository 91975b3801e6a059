"""Column names and Spark schemas of the stream job, in one place.

Why explicit schemas: ``mapInPandas`` needs its output schema up front, the parquet files
and the ``tweets.enriched`` messages are a contract with readers (dashboard, analysts,
benchmarks), and one list here keeps the pandas functions in :mod:`replyflow.stream.enrich`
and the Spark plan in :mod:`replyflow.stream.job` from drifting apart.
"""

from __future__ import annotations

from pyspark.sql import types as T

#: Fields of :class:`replyflow.core.contracts.RawTweet`, in wire order.
RAW_SCHEMA = T.StructType(
    [
        T.StructField("tweet_id", T.StringType()),
        T.StructField("text", T.StringType()),
        T.StructField("author_id", T.StringType()),
        T.StructField("author_handle", T.StringType()),
        T.StructField("created_at", T.TimestampType()),
        T.StructField("conversation_id", T.StringType()),
        T.StructField("in_reply_to_tweet_id", T.StringType()),
        T.StructField("lang", T.StringType()),
        T.StructField("source", T.StringType()),
        T.StructField("matched_rules", T.ArrayType(T.StringType())),
        T.StructField("is_retweet", T.BooleanType()),
    ]
)
#: Where the message came from (lineage, restart checks, latency: ``kafka_timestamp`` is the produce time).
KAFKA_SCHEMA = T.StructType(
    [
        T.StructField("kafka_topic", T.StringType()),
        T.StructField("kafka_partition", T.IntegerType()),
        T.StructField("kafka_offset", T.LongType()),
        T.StructField("kafka_timestamp", T.TimestampType()),
    ]
)
ENTITY_SCHEMA = T.StructType(
    [
        T.StructField("text", T.StringType()),
        T.StructField("label", T.StringType()),
        T.StructField("start", T.IntegerType()),
        T.StructField("end", T.IntegerType()),
    ]
)
#: What the NLP adds (keys of ``Enricher.enrich`` results).
NLP_SCHEMA = T.StructType(
    [
        T.StructField("clean_text", T.StringType()),
        T.StructField("sentiment", T.StringType()),
        T.StructField("sentiment_score", T.DoubleType()),
        T.StructField("topic", T.StringType()),
        T.StructField("topic_score", T.DoubleType()),
        T.StructField("needs_reply_score", T.DoubleType()),
        T.StructField("entities", T.ArrayType(ENTITY_SCHEMA)),
    ]
)
#: The design's enriched row, in order: raw fields + NLP + policy + lineage of the model.
ROW_SCHEMA = T.StructType(
    [
        *RAW_SCHEMA.fields,
        *NLP_SCHEMA.fields,
        T.StructField("needs_reply", T.BooleanType()),
        T.StructField("ticket_id", T.StringType()),
        T.StructField("model_version", T.StringType()),
        T.StructField("processed_at", T.TimestampType()),
    ]
)

# Column names, derived from the schemas so the two cannot drift apart.
RAW_FIELDS: tuple[str, ...] = tuple(RAW_SCHEMA.fieldNames())
KAFKA_FIELDS: tuple[str, ...] = tuple(KAFKA_SCHEMA.fieldNames())
NLP_FIELDS: tuple[str, ...] = tuple(NLP_SCHEMA.fieldNames())
ENRICHED_FIELDS: tuple[str, ...] = tuple(ROW_SCHEMA.fieldNames())
#: The DLQ envelope (a :class:`replyflow.core.contracts.DeadLetter` as JSON) of a rejected message.
DLQ_COLUMN = "dead_letter"
#: Partition columns of the parquet dataset (see docs/STREAM.md, "exactly once").
DATE_COLUMN = "date"
BATCH_COLUMN = "batch_id"

#: Output of the parse step: a valid tweet (``dead_letter`` null) or a rejected message
#: (raw fields null, ``dead_letter`` = envelope JSON), plus the Kafka coordinates of both.
PARSED_SCHEMA = T.StructType(
    [*RAW_SCHEMA.fields, *KAFKA_SCHEMA.fields, T.StructField("kafka_key", T.BinaryType()), T.StructField(DLQ_COLUMN, T.StringType())]
)

#: Output of the enrich step (before the job adds ``batch_id``).
ENRICHED_SCHEMA = T.StructType([*ROW_SCHEMA.fields, *KAFKA_SCHEMA.fields, T.StructField(DATE_COLUMN, T.StringType())])

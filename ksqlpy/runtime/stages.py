"""How a persistent query runs on Kafka as stages joined by repartition topics, each stage a consumer group.

A query whose rows must meet by a key its input is not partitioned by cannot run as one consumer group split
across processes: a process sees only its partitions' records. Kafka Streams moves such rows through a
repartition topic keyed by the new key, and so does ksqlpy:
- a GROUP BY on a non-key expression over a stream: the stage before the aggregate writes
  `…-Aggregate-GroupBy-repartition`, the stage that aggregates reads it;
- a join of two sources not on both their keys: each stream side not keyed by the join key is written to
  `…-Join-left-repartition` / `…-Join-right-repartition` by a stage of its own, and the stage that joins
  reads those and the keyed side's topic, co-partitioned.
The query's main stage (the last) has the query's application id, keeps its state and writes its sink; the
stages before it hold no state. Over a single partition every row is in one partition already: one stage.

A query that still moves rows between partitions in process (a foreign-key join, a join on an expression
of another join's output, a GROUP BY re-keying a table or a join) is correct only while one process reads
every partition. Its stage is
leased: the members of its group share a one-partition `…-lease` topic instead of the inputs, and the one
holding the lease reads all of the inputs' partitions; the others stand by and take over, restoring the state
from its changelogs, when it leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ksqlpy.engine import PersistentQuery
from ksqlpy.execution.pipeline import OutputBatch, Pipeline, RecordBatch
from ksqlpy.planning.plan import REPARTITION_TOPIC_SUFFIX

StageRun = Callable[[Pipeline, RecordBatch], OutputBatch]


@dataclass(frozen=True)
class Stage:
    """The part of a query one worker runs, and what it reads and writes."""

    name: str  # "" for the query's main stage; else a suffix of the group, thread and transactional ids
    pipeline: Pipeline
    run: StageRun
    sources: Mapping[str, int]  # the topics read, with their partition counts
    sink_topic: str  # a repartition topic, or the query's sink
    # Repartition topics among the sources: they hold only what this query wrote, all of it to be read.
    internal: frozenset[str] = field(default_factory=frozenset)
    co_partitioned: bool = True  # partition p of each source meets only partition p of the others
    lease_topic: str | None = None  # set when one process at a time runs the stage, reading every partition

    @property
    def is_main(self) -> bool:
        return not self.name


def whole_query(query: PersistentQuery, application_id: str | None = None) -> Stage:
    """All of a query in one stage (leased, given the application id, when its joins need that)."""
    sources = _sources(query)
    return Stage("", query.pipeline, _whole, sources, query.sink.topic,
                 co_partitioned=query.plan.co_partitioned,
                 lease_topic=_lease_topic(query.pipeline, sources, application_id))


def query_stages(query: PersistentQuery, application_id: str) -> list[Stage]:
    """The stages a query runs in on Kafka, the main stage last."""
    pipeline = query.pipeline
    sources = _sources(query)
    if pipeline.commits_state:
        return [whole_query(query, application_id)]
    if pipeline.repartitions and pipeline.repartition_partitions > 1:
        topic = application_id + REPARTITION_TOPIC_SUFFIX
        return [
            Stage("GroupBy", pipeline.replica(), _before_aggregate, sources, topic),
            Stage("", pipeline, _aggregating, {topic: pipeline.repartition_partitions},
                  query.sink.topic, frozenset({topic})),
        ]
    repartitions = pipeline.join_repartitions
    if not repartitions:
        return [whole_query(query, application_id)]

    def topic_of(name: str) -> str:
        return f"{application_id}-{name}-repartition"

    joined = pipeline.staged(topic_of)
    # A self-join may read its topic on a keyed side too: then the joining stage reads it as well.
    kept = {topic: sources[topic] for topic in joined.joins.routes if topic in sources} if joined.joins else {}
    internal = {topic_of(repartition.name): repartition.partitions for repartition in repartitions}
    stages = [
        Stage(repartition.name, pipeline.replica(), _rekeying(repartition.name),
              {repartition.topic: sources[repartition.topic]}, topic_of(repartition.name))
        for repartition in repartitions
    ]
    reads = {**kept, **internal}
    return [*stages, Stage("", joined, _whole, reads, query.sink.topic, frozenset(internal),
                           lease_topic=_lease_topic(joined, reads, application_id))]


def _lease_topic(pipeline: Pipeline, sources: Mapping[str, int], application_id: str | None) -> str | None:
    if application_id is None or not pipeline.places_in_process:
        return None
    return f"{application_id}-lease" if max(sources.values()) > 1 else None


# What a stage does with a batch, looked up on the pipeline at each call (its methods may be replaced while
# it runs, as tests do to inject faults).
def _whole(pipeline: Pipeline, batch: RecordBatch) -> OutputBatch:
    return pipeline.process(batch)


def _before_aggregate(pipeline: Pipeline, batch: RecordBatch) -> OutputBatch:
    return pipeline.process_upstream(batch)


def _aggregating(pipeline: Pipeline, batch: RecordBatch) -> OutputBatch:
    return pipeline.process_downstream(batch)


def _sources(query: PersistentQuery) -> dict[str, int]:
    return {step.source.topic: step.source.partitions for step in query.plan.sources}


def _rekeying(name: str) -> StageRun:
    def run(pipeline: Pipeline, batch: RecordBatch) -> OutputBatch:
        return pipeline.process_rekey(name, batch)

    return run

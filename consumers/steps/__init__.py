"""The projector's steps, one module each, in the order a batch goes through them:
``gather`` -> ``bound`` -> ``decode`` -> (``consumers.projections.project``) -> ``write`` ->
``dead_letters`` -> ``commit``. Each can be used and tested alone."""

from aiokafka import ConsumerRecord, TopicPartition

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
"""One batch: the records fetched from each partition, in offset order."""

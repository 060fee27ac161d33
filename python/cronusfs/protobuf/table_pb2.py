"""The messages of ``table.proto`` (the original's ``cronus.io.protobuf.table_pb2``)."""

from . import messages_of

globals().update(messages_of("table.proto"))

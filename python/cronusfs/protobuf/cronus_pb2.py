"""The messages of ``cronus.proto`` (the original's ``cronus.io.protobuf.cronus_pb2``)."""

from . import messages_of

globals().update(messages_of("cronus.proto"))

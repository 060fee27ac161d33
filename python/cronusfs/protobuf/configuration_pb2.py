"""The messages of ``configuration.proto`` (the original's ``cronus.io.protobuf.configuration_pb2``)."""

from . import messages_of

globals().update(messages_of("configuration.proto"))

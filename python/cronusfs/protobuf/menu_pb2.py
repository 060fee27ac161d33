"""The messages of ``menu.proto`` (the original's ``cronus.io.protobuf.menu_pb2``)."""

from . import messages_of

globals().update(messages_of("menu.proto"))

"""The Cronus protobuf messages, built from the descriptors of the repository's ``proto/``
that the native module carries: the same names and field numbers as the original's
``cronus.io.protobuf`` modules, without ``protoc``. Each ``*_pb2`` module here is named
after the original's, so that only the package in an import line changes."""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf import timestamp_pb2

from .. import _native

_files = descriptor_pb2.FileDescriptorSet.FromString(_native.FILE_DESCRIPTORS)
# A pool of our own: another package's cronus.proto in the default pool cannot clash.
POOL = descriptor_pool.DescriptorPool()
_names = {f.name for f in _files.file}
if "google/protobuf/timestamp.proto" not in _names:
    _timestamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(_timestamp)
    POOL.Add(_timestamp)
for _file in _files.file:
    POOL.Add(_file)


def messages_of(proto_file):
    """Returns the message and enum classes of ``proto_file`` (``"cronus.proto"``) by name."""
    found = {}
    described = POOL.FindFileByName(proto_file)
    for name, desc in described.message_types_by_name.items():
        found[name] = message_factory.GetMessageClass(desc)
    for name, desc in described.enum_types_by_name.items():
        found[name] = _enum(desc)
        for value in desc.values:
            found[value.name] = value.number
    return found


def _enum(desc):
    from google.protobuf.internal import enum_type_wrapper

    return enum_type_wrapper.EnumTypeWrapper(desc)

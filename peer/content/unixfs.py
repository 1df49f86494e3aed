"""The CID Kubo gives bytes under fedchain's fixed import settings, computed locally.

fedchain always adds with CIDv1, raw leaves, sha2-256, 1 MiB chunks and at most
1024 links per node (``ADD_OPTIONS`` in ``peer.content.kubo``), so a CID is a
pure function of the bytes.  Recomputing it here lets a peer check fetched
content without handing it back to Kubo: content of at most one chunk is a raw
block named by its sha256; larger content is a dag-pb UnixFS ``File`` node
linking to its raw 1 MiB leaves.  Content that needs more than 1024 leaves
(Kubo's deeper balanced tree) is refused: fedchain's models are far smaller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from fedchain.errors import ContentError
from peer.content.cid import CODEC_DAG_PB, CODEC_RAW, Cid, encode_varint

CHUNK_SIZE = 1024 * 1024
"""``chunker=size-1048576``."""
MAX_LINKS = 1024
"""``max-file-links=1024``: one root holds at most this many leaves."""
MAX_FLAT_FILE_BYTES = CHUNK_SIZE * MAX_LINKS
"""Largest content whose CID this module computes (1 GiB)."""

UNIXFS_FILE = 2
"""``Data.DataType.File`` in the UnixFS protobuf schema."""

# Protobuf wire types.
_VARINT = 0
_LENGTH_DELIMITED = 2


def _key(field: int, wire_type: int) -> bytes:
    return encode_varint(field << 3 | wire_type)


def _bytes_field(field: int, value: bytes) -> bytes:
    return _key(field, _LENGTH_DELIMITED) + encode_varint(len(value)) + value


def _uint_field(field: int, value: int) -> bytes:
    return _key(field, _VARINT) + encode_varint(value)


@dataclass(frozen=True)
class Leaf:
    """One raw leaf block as a link from its parent: binary CID and byte count."""

    cid: bytes
    size: int


def unixfs_file_data(filesize: int, blocksizes: Sequence[int]) -> bytes:
    """UnixFS ``Data`` message of a file node without inline data (fields 1, 3, 4)."""
    out = _uint_field(1, UNIXFS_FILE) + _uint_field(3, filesize)
    return out + b"".join(_uint_field(4, size) for size in blocksizes)


def dag_pb_node(links: Sequence[tuple[bytes, int]], data: bytes) -> bytes:
    """A canonical dag-pb ``PBNode``: links (hash, empty name, tsize) first, then data.

    Kubo always writes a link's name, even when empty, so the empty name is kept.
    """
    encoded = b"".join(
        _bytes_field(2, _bytes_field(1, cid) + _bytes_field(2, b"") + _uint_field(3, tsize))
        for cid, tsize in links
    )
    return encoded + _bytes_field(1, data)


def file_root_block(leaves: Sequence[Leaf]) -> bytes:
    """The dag-pb root block Kubo writes over ``leaves`` (two or more, at most 1024)."""
    sizes = [leaf.size for leaf in leaves]
    data = unixfs_file_data(sum(sizes), sizes)
    return dag_pb_node([(leaf.cid, leaf.size) for leaf in leaves], data)


def _too_large(size: int) -> ContentError:
    return ContentError(
        f"content of {size} bytes needs more than {MAX_LINKS} chunks of {CHUNK_SIZE} bytes; "
        f"fedchain only verifies content up to {MAX_FLAT_FILE_BYTES} bytes"
    )


class FileCidBuilder:
    """Computes the CID of bytes fed in pieces, holding only one chunk at a time."""

    def __init__(self) -> None:
        self._leaves: list[Leaf] = []
        self._pending = bytearray()
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next piece of content."""
        view = memoryview(data).cast("B")
        self._size += len(view)
        if self._size > MAX_FLAT_FILE_BYTES:
            raise _too_large(self._size)
        while len(view):
            room = CHUNK_SIZE - len(self._pending)
            if not self._pending and len(view) >= CHUNK_SIZE:
                self._add_leaf(view[:CHUNK_SIZE])
                view = view[CHUNK_SIZE:]
                continue
            self._pending += view[:room]
            view = view[room:]
            if len(self._pending) == CHUNK_SIZE:
                self._add_leaf(self._pending)
                self._pending = bytearray()

    @staticmethod
    def _leaf(chunk: bytes | bytearray | memoryview) -> Leaf:
        digest = hashlib.sha256(chunk).digest()
        return Leaf(Cid.from_digest(digest, CODEC_RAW).binary, len(chunk))

    def _add_leaf(self, chunk: bytes | bytearray | memoryview) -> None:
        self._leaves.append(self._leaf(chunk))

    def cid(self) -> str:
        """The CIDv1 Kubo gives the bytes fed so far."""
        leaves = list(self._leaves)
        if self._pending or not leaves:
            leaves.append(self._leaf(self._pending))
        if len(leaves) == 1:  # one chunk: the raw block is the whole content
            return Cid(leaves[0].cid).text
        root = hashlib.sha256(file_root_block(leaves)).digest()
        return Cid.from_digest(root, CODEC_DAG_PB).text


def file_cid(data: bytes | bytearray | memoryview) -> str:
    """The CID ``add`` with fedchain's settings gives ``data``; no Kubo involved."""
    size = memoryview(data).nbytes
    if size > MAX_FLAT_FILE_BYTES:
        raise _too_large(size)
    builder = FileCidBuilder()
    builder.update(data)
    return builder.cid()

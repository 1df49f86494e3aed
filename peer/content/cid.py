"""CIDv1 <-> bytes, without a dependency.

The ledger stores a CID's 32-byte sha2-256 digest (a ``bytes32``, cheaper than a
string) and peers pass CIDs around as text, so both directions are needed and
must agree byte for byte with what Kubo prints.  Only what fedchain produces is
accepted: CIDv1, multibase ``b`` (lower-case base32), sha2-256.

:class:`Cid` is the value type (like py-libp2p's peer ``ID``): parse or build it
once where a CID enters, pass it on, and take ``.text``, ``.binary`` or
``.digest`` where a form is needed.  The module-level functions are the same
conversions for code that still passes text.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from fedchain.errors import ContentError

CID_VERSION_1 = 1
CODEC_RAW = 0x55
"""A raw block: the content itself (Kubo's single-block files with raw leaves)."""
CODEC_DAG_PB = 0x70
"""A UnixFS node linking to other blocks (Kubo's multi-block files)."""
MULTIHASH_SHA2_256 = 0x12
SHA2_256_LENGTH = 32
MULTIBASE_BASE32 = "b"


def _read_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Decode one unsigned LEB128 varint at ``pos``; return (value, next position)."""
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= len(data):
            raise ContentError(f"CID bytes end inside the {what} varint (offset {start})")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ContentError(f"CID {what} varint at offset {start} is longer than 9 bytes")


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as used by multiformats and protobuf."""
    if value < 0:
        raise ValueError(f"varints are unsigned, got {value}")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _parse(raw: bytes) -> tuple[int, int, bytes]:
    """Split binary CIDv1 into (codec, multihash code, digest), validating lengths."""
    version, pos = _read_varint(raw, 0, "version")
    if version != CID_VERSION_1:
        raise ContentError(f"CID version {version} is not supported; fedchain uses CIDv1")
    codec, pos = _read_varint(raw, pos, "codec")
    hash_code, pos = _read_varint(raw, pos, "multihash code")
    length, pos = _read_varint(raw, pos, "multihash length")
    digest = raw[pos:]
    if len(digest) != length:
        raise ContentError(
            f"CID multihash says {length} digest bytes but {len(digest)} follow; "
            "the CID is truncated or corrupt"
        )
    return codec, hash_code, digest


def _decode_text(cid: str) -> bytes:
    """Binary form of a text CIDv1 (multibase ``b``), validated."""
    if not isinstance(cid, str) or not cid:
        raise ContentError(f"expected a CID string, got {cid!r}")
    if cid.startswith("Qm") and len(cid) == 46:
        raise ContentError(
            f"{cid} is a CIDv0; fedchain uses CIDv1 (add content with cid-version 1)"
        )
    if cid[0] != MULTIBASE_BASE32:
        raise ContentError(
            f"CID {cid!r} is not in lower-case base32 (multibase prefix 'b'); "
            "fedchain only handles CIDv1 as Kubo prints it by default"
        )
    body = cid[1:]
    if body != body.lower():
        raise ContentError(f"CID {cid!r} mixes upper-case letters into base32 'b'")
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except ValueError as exc:
        raise ContentError(f"CID {cid!r} is not valid base32: {exc}") from exc
    try:
        _parse(raw)
    except ContentError as exc:
        raise ContentError(f"CID {cid!r} is invalid: {exc}") from None
    return raw


@dataclass(frozen=True, slots=True)
class Cid:
    """A validated CIDv1 as fedchain uses it: one value whatever form it arrived in.

    Peers pass CIDs as text (``bafy...``, what Kubo prints), the ledger stores
    binary CIDs or their 32-byte sha2-256 digests; a ``Cid`` is built from any of
    them with a check, and gives every form back.  Equal CIDs compare and hash
    equal.  Construct it with :meth:`parse`, :meth:`from_bytes`,
    :meth:`from_digest` or :meth:`of`; the constructor takes the binary form and
    checks it too.
    """

    binary: bytes
    """Binary CIDv1: version, codec, multihash code, length, digest (as varints + bytes)."""

    def __post_init__(self) -> None:
        if not isinstance(self.binary, bytes):
            raise ContentError(f"a binary CID is bytes, got {type(self.binary).__name__}")
        _parse(self.binary)

    @classmethod
    def parse(cls, text: str) -> Cid:
        """The CID a text CIDv1 (multibase ``b``) names; ContentError quoting ``text`` if bad."""
        return cls(_decode_text(text))

    @classmethod
    def from_bytes(cls, binary: bytes | bytearray | memoryview) -> Cid:
        """The CID whose binary form is ``binary``; ContentError if it is not a whole CIDv1."""
        try:
            return cls(bytes(binary))
        except ContentError as exc:
            raise ContentError(f"binary CID 0x{bytes(binary).hex()} is invalid: {exc}") from None

    @classmethod
    def from_digest(cls, digest: bytes, codec: int = CODEC_RAW) -> Cid:
        """Rebuild a CIDv1 from a sha2-256 ``digest`` (as the ledger stores it) and its codec."""
        if not isinstance(digest, bytes | bytearray) or len(digest) != SHA2_256_LENGTH:
            got = len(digest) if isinstance(digest, bytes | bytearray) else type(digest).__name__
            raise ContentError(f"a sha2-256 digest has 32 bytes, got {got}")
        if codec < 0:
            raise ContentError(f"multicodec {codec} is negative")
        return cls(
            encode_varint(CID_VERSION_1)
            + encode_varint(codec)
            + encode_varint(MULTIHASH_SHA2_256)
            + encode_varint(SHA2_256_LENGTH)
            + bytes(digest)
        )

    @classmethod
    def of(cls, value: Cid | str) -> Cid:
        """``value`` itself if already a Cid, else the parse of its text."""
        return value if isinstance(value, Cid) else cls.parse(value)

    @property
    def text(self) -> str:
        """Text CIDv1, multibase ``b`` (lower-case base32), exactly as Kubo prints it."""
        encoded = base64.b32encode(self.binary).decode("ascii").rstrip("=").lower()
        return MULTIBASE_BASE32 + encoded

    @property
    def codec(self) -> int:
        """Multicodec of the root block (``CODEC_RAW``, ``CODEC_DAG_PB``, ...)."""
        return _parse(self.binary)[0]

    @property
    def hash_code(self) -> int:
        """Multihash function code (``MULTIHASH_SHA2_256`` for everything fedchain makes)."""
        return _parse(self.binary)[1]

    @property
    def digest(self) -> bytes:
        """The 32-byte sha2-256 digest (the ``bytes32`` the ledger stores)."""
        _, hash_code, digest = _parse(self.binary)
        if hash_code != MULTIHASH_SHA2_256 or len(digest) != SHA2_256_LENGTH:
            raise ContentError(
                f"CID {self.text} uses multihash 0x{hash_code:x} with {len(digest)} bytes; "
                "fedchain needs sha2-256 (0x12, 32 bytes)"
            )
        return digest

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Cid({self.text!r})"


# -- function forms, kept for the call sites that pass text around ----------------


def cid_to_bytes(cid: str) -> bytes:
    """Binary form of a text CIDv1 (multibase ``b``), validated."""
    return _decode_text(cid)


def cid_from_bytes(raw: bytes) -> str:
    """Text CIDv1 (multibase ``b``) of binary CIDv1 bytes, validated."""
    return Cid(bytes(raw)).text


def cid_codec(cid: str) -> int:
    """Multicodec of the CID's root block (``CODEC_RAW``, ``CODEC_DAG_PB``, ...)."""
    return Cid.parse(cid).codec


def digest_of_cid(cid: str) -> bytes:
    """The 32-byte sha2-256 digest inside a CIDv1 (what the ledger stores)."""
    return Cid.parse(cid).digest


def cid_from_digest(digest: bytes, codec: int) -> str:
    """Rebuild a CIDv1 from a sha2-256 digest (as read from the ledger) and its codec."""
    return Cid.from_digest(digest, codec).text

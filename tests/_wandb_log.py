"""Reads the records of a W&B run file (`run-<id>.wandb`) so tests can check what was logged.

wandb 0.31 ships no Python reader of its transaction log. The file is a LevelDB-style log: a
7-byte header (":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of records, each with a
7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last) and a piece of one
serialized `wandb_internal_pb2.Record`; a block's tail shorter than a header is zero padding.
"""

import struct
import zlib

_BLOCK = 32768
_HEADER = 7


def records(path):
  """The `Record` protos of a .wandb file, in order (checksums verified)."""
  from wandb.proto import wandb_internal_pb2 as pb  # pylint: disable=g-import-not-at-top
  data = open(path, "rb").read()
  ident, magic, version = struct.unpack("<4sHB", data[:_HEADER])
  assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
  pos, parts, out = _HEADER, [], []
  while pos + _HEADER <= len(data):
    left = _BLOCK - pos % _BLOCK
    if left < _HEADER:  # Zero padding at a block's end.
      pos += left
      continue
    crc, length, kind = struct.unpack("<IHB", data[pos:pos + _HEADER])
    if length == 0 and kind == 0:
      break
    piece = data[pos + _HEADER:pos + _HEADER + length]
    assert zlib.crc32(bytes([kind]) + piece) & 0xFFFFFFFF == crc, f"bad checksum at {pos}"
    pos += _HEADER + length
    parts.append(piece)
    if kind in (1, 4):  # Full or last: a whole record.
      rec = pb.Record()
      rec.ParseFromString(b"".join(parts))
      out.append(rec)
      parts = []
  return out

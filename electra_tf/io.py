"""The small file helpers every stage shares, written once: atomic writes and JSON through
tf.io.gfile, and the first line of an error message.

Every path a user gives may name any filesystem TensorFlow knows (local, gs://, s3:// through its
plugin, hdfs://, ram://), so nothing here uses open() or os.path on it. An atomic write goes to a
hidden temporary name in the same directory and is then renamed over the target: a reader sees
the old file, no file or the complete new one. Local filesystems and GCS (object rename) give that
guarantee; on a filesystem without atomic rename a killed writer can leave the hidden temporary
behind, never a half-written target.

    >>> from electra_tf import io
    >>> io.write_json("ram://tmp/results.json", {"accuracy": 0.9})
    >>> io.read_json("ram://tmp/results.json")
    {'accuracy': 0.9}
"""

import hashlib
import json
import os
import posixpath
import re
import uuid

import tensorflow as tf


def first_line(error: BaseException) -> str:
    """The first line of an error's message (TensorFlow's messages carry long stack dumps)."""
    text = getattr(error, "message", None) or str(error)
    line = (text.strip().splitlines() or [type(error).__name__])[0]
    # TF prefixes "{{function_node ...}}" and appends " [Op:Name] name:" to op errors.
    line = line.rsplit("}}", 1)[-1]
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", line).strip() or type(error).__name__


def join(*parts: str) -> str:
    """Joins path parts; URL-style paths (gs://, ram://) always with '/'."""
    if "://" in parts[0]:
        return posixpath.join(*parts)
    return os.path.join(*parts)


def dirname(path: str) -> str:
    if "://" in path:
        scheme, rest = path.split("://", 1)
        head = posixpath.dirname(rest)
        return f"{scheme}://{head}" if head else f"{scheme}://"
    return os.path.dirname(path)


def basename(path: str) -> str:
    return posixpath.basename(path) if "://" in path else os.path.basename(path)


def _temporary_name(path: str) -> str:
    return join(dirname(path), f".{basename(path)}.tmp-{uuid.uuid4().hex[:12]}")


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` atomically, creating the parent directory."""
    parent = dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)
    tmp = _temporary_name(path)
    try:
        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    except BaseException:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
        raise


def write_text(path: str, text: str) -> None:
    """Writes UTF-8 `text` to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, value, indent: int = 2, sort_keys: bool = True,
               ensure_ascii: bool = True) -> None:
    """Writes `value` as JSON (with a final newline) atomically."""
    write_text(path, json.dumps(value, indent=indent, sort_keys=sort_keys,
                                ensure_ascii=ensure_ascii) + "\n")


def copy_file(source: str, target: str) -> None:
    """Copies `source` to `target` atomically (either may be on any gfile filesystem)."""
    with tf.io.gfile.GFile(source, "rb") as f:
        write_bytes(target, f.read())


def read_text(path: str) -> str:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read().decode("utf-8")


def read_json(path: str):
    """The JSON value in `path`; ValueError (with the path) when it is not valid JSON."""
    text = read_text(path)
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def sha256_file(path: str) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

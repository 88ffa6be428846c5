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

import contextlib
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


def checked(operation, path: str, flag: str):
    """`operation(path)`, a tf.io.gfile call on a path the user gave: a filesystem that refuses
    it (no credentials, a bucket that does not exist, no network) is one error line naming the
    flag and the path instead of a traceback."""
    from electra_tf.cli import UserError  # cli imports TensorFlow first, quietly

    try:
        return operation(path)
    except tf.errors.OpError as e:
        raise UserError(f"{flag}={path}: {first_line(e)}") from None


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


def checkpoint_reader(prefix: str):
    """A reader of the checkpoint `prefix` (".../ckpt-3"), on any filesystem.

    tf.train.load_checkpoint and list_variables first ask whether the name is a directory, and
    on filesystems whose directories are name prefixes (ram://) ".../ckpt-3" is one as soon as
    ".../ckpt-3.index" exists; this reader takes the prefix as it is.
    """
    return tf.compat.v1.train.NewCheckpointReader(prefix)


def absolute(path: str) -> str:
    """A local path made absolute; a URL-style path (gs://, ram://) as it is, already absolute."""
    return path if "://" in path else os.path.abspath(path)


def listdir(path: str) -> list[str]:
    """The names in directory `path`, sorted. Object stores list a subdirectory with a trailing
    '/' (GCS does), so names are stripped of it and compare like local ones."""
    return sorted({name.rstrip("/") for name in tf.io.gfile.listdir(path)})


@contextlib.contextmanager
def staging_directory(parent: str, label: str):
    """A new hidden directory `parent/.<label>-<random>` for the block, removed afterwards
    whatever happens: what is written there reaches its final names only by moves (a reader
    of `parent` never sees a file half-written, and a killed writer leaves only a hidden
    directory, which TF Serving and checkpoint lookups ignore)."""
    path = join(parent, f".{label}-{uuid.uuid4().hex[:12]}")
    tf.io.gfile.makedirs(path)
    try:
        yield path
    finally:
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)


def move_files(source_dir: str, target_dir: str, last: tuple = ()) -> list[str]:
    """Moves every file under `source_dir` to the same relative path under `target_dir`
    (directories created, files of the same name replaced); returns the relative paths.

    One rename per file, so this works where a directory rename does not (an object store
    renames objects; ram:// renames only the directory entry). Each file appears under its
    final name whole, but the files appear one by one: the relative paths in `last` are moved
    after all others, in that order, so a reader that looks for one of them (a SavedModel's
    saved_model.pb, a checkpoint's `checkpoint` state file) finds everything it refers to.
    Source and target must be on the same filesystem.
    """
    files = []
    for directory, _, names in tf.io.gfile.walk(source_dir):
        relative = directory[len(source_dir):].strip("/")
        files.extend(join(relative, name) if relative else name for name in names)
    order = {name: i for i, name in enumerate(last)}
    files.sort(key=lambda name: (order.get(name, -1), name))
    for name in files:
        target = join(target_dir, name)
        tf.io.gfile.makedirs(dirname(target))
        tf.io.gfile.rename(join(source_dir, name), target, overwrite=True)
    return files

"""Path confinement: every SFTP path resolves inside one document root.

A client sees the document root as ``/``. Client paths are first normalised
lexically (``..`` above ``/`` is rejected, not clamped, except by
``realpath``, which ``cd`` uses), then resolved by the
kernel with ``openat2(2)`` and ``RESOLVE_BENEATH`` relative to a descriptor
of the root. The kernel follows symlinks that stay inside the root and
fails with ``EXDEV`` on any component that would leave it, including
absolute symlinks and ``..`` reached through a symlink. Because the check
and the open are one system call, renaming or replacing a component
between a check and its use cannot lead outside.

Operations on a final component itself (unlink, rename, mkdir, symlink,
lstat) resolve the parent this way and then act on the name relative to the
parent's descriptor without following it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
from dataclasses import dataclass

# linux/openat2.h
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
# asm-generic/unistd.h: openat2 has the same number on every architecture.
SYS_OPENAT2 = 437
# linux/fs.h, for renameat2(2)
RENAME_NOREPLACE = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.renameat2.argtypes = [
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_uint,
]

FILE_MODE = 0o644
DIRECTORY_MODE = 0o755
# Permission bits a client may set with chmod: readable by the web server,
# writable only by the owner, no set-id or sticky bits.
ALLOWED_MODE_BITS = 0o755


class OutsideRootError(PermissionError):
    """A path that would lead outside the document root."""

    def __init__(self, path: bytes | str) -> None:
        super().__init__(
            errno.EACCES, "Permission denied: path is outside the document root"
        )
        self.client_path = path


def split_path(path: bytes, clamp: bool = False) -> tuple[bytes, ...]:
    """Return the components of a client path below the root ``/``.

    Relative paths start at the root, as the root is the session's home
    directory. ``.`` and empty components are dropped and ``..`` removes the
    previous component. A ``..`` above the root raises OutsideRootError,
    or with ``clamp`` stays at the root, as ``/..`` does in a chroot.
    """
    if b"\0" in path:
        raise OSError(errno.EINVAL, "Invalid argument: NUL byte in path")
    parts: list[bytes] = []
    for part in path.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if parts:
                parts.pop()
            elif not clamp:
                raise OutsideRootError(path)
        else:
            parts.append(part)
    return tuple(parts)


def client_path(parts: tuple[bytes, ...]) -> bytes:
    """Return the absolute client path of root-relative components."""
    return b"/" + b"/".join(parts)


def openat2(dir_fd: int, path: bytes, flags: int, mode: int = 0) -> int:
    """Open ``path`` beneath ``dir_fd``; the kernel rejects any escape."""
    how = ctypes.create_string_buffer(
        struct.pack(
            "QQQ", flags | os.O_CLOEXEC, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
        )
    )
    while True:
        fd = _libc.syscall(SYS_OPENAT2, dir_fd, path, how, ctypes.sizeof(how))
        if fd >= 0:
            return int(fd)
        code = ctypes.get_errno()
        if code == errno.EINTR:
            continue
        if code == errno.EXDEV:
            raise OutsideRootError(path)
        if code == errno.EAGAIN:
            # RESOLVE_BENEATH fails with EAGAIN when a concurrent rename might
            # have let ".." escape, and openat2(2) documents a retry for it.
            continue
        raise OSError(code, os.strerror(code))


def renameat2_noreplace(
    old_dir_fd: int, old_name: bytes, new_dir_fd: int, new_name: bytes
) -> None:
    """Rename without replacing an existing target (SFTP v3 rename semantics)."""
    if _libc.renameat2(old_dir_fd, old_name, new_dir_fd, new_name, RENAME_NOREPLACE):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@dataclass(frozen=True)
class ParentEntry:
    """A final path component and a descriptor of its (resolved) parent."""

    dir_fd: int
    name: bytes


class DocumentRoot:
    """A document root opened once; every client path is resolved beneath it."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.real_path = os.fsencode(os.readlink(f"/proc/self/fd/{self.fd}"))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def open(self, path: bytes, flags: int, mode: int = 0) -> int:
        """Open a client path (following links that stay inside)."""
        parts = split_path(path)
        relative = b"/".join(parts) or b"."
        return openat2(self.fd, relative, flags, mode)

    def open_parent(self, path: bytes) -> ParentEntry:
        """Resolve the parent of a client path; the root itself has no parent.

        The caller closes ``dir_fd``.
        """
        parts = split_path(path)
        if not parts:
            raise OutsideRootError(path)
        parent = b"/".join(parts[:-1]) or b"."
        dir_fd = openat2(self.fd, parent, os.O_PATH | os.O_DIRECTORY)
        return ParentEntry(dir_fd, parts[-1])

    def host_path(self, fd: int) -> bytes:
        """Return the host path of an open descriptor (for symlink checks)."""
        return os.fsencode(os.readlink(f"/proc/self/fd/{fd}"))

    def to_client_path(self, host_path: bytes) -> bytes:
        """Map a host path inside the root to the client's view of it."""
        if host_path == self.real_path:
            return b"/"
        prefix = self.real_path.rstrip(b"/") + b"/"
        if not host_path.startswith(prefix):
            raise OutsideRootError(host_path)
        return b"/" + host_path[len(prefix) :]

    def realpath(self, path: bytes) -> bytes:
        """Return the canonical client path, resolving links inside the root.

        A path whose final components do not exist yet is returned in its
        normalised form, because clients ask for the name of a file they
        are about to upload. ``..`` above the root stays at the root, so
        ``cd ..`` in ``/`` works as it does in OpenSSH's chroot.
        """
        parts = split_path(path, clamp=True)
        try:
            fd = self.open(client_path(parts), os.O_PATH)
        except FileNotFoundError:
            return client_path(parts)
        try:
            return self.to_client_path(self.host_path(fd))
        finally:
            os.close(fd)

    def check_symlink_target(self, link_dir_fd: int, target: bytes) -> None:
        """Reject a symlink target that would resolve outside the root.

        The target is judged as the kernel will read it later, for example
        when the http module serves the link: an absolute target is a host
        path, a relative one starts at the link's directory. Symlinks already
        on that path are followed by ``realpath``; a component that does not
        exist yet is taken lexically.
        """
        if not target or b"\0" in target:
            raise OSError(errno.EINVAL, "Invalid argument: empty symlink target")
        if target.startswith(b"/"):
            host = target
        else:
            host = os.path.join(self.host_path(link_dir_fd), target)
        resolved = os.fsencode(os.path.realpath(host))
        root = self.real_path
        if resolved != root and not resolved.startswith(root.rstrip(b"/") + b"/"):
            raise OutsideRootError(target)


def permission_bits(mode: int) -> int:
    """Return the permission bits a client may set, without type or set-id bits."""
    return stat.S_IMODE(mode) & ALLOWED_MODE_BITS

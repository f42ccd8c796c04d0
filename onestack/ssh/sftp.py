"""The SFTP file operations of one session, confined to one document root.

asyncssh decodes the SFTP version 3 packets and calls these methods. Every
path goes through ``DocumentRoot`` (see ``confine``), never through
asyncssh's own path mapping, because that follows symlinks pointing outside.
``OSError`` leaves as its SFTP status (ENOENT is NO_SUCH_FILE, EACCES is
PERMISSION_DENIED, ...) in asyncssh's one place for that; anything else is
our bug, logged here and returned as FAILURE without its text.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import stat
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncssh
from asyncssh import (
    FXF_APPEND,
    FXF_CREAT,
    FXF_EXCL,
    FXF_READ,
    FXF_TRUNC,
    FXF_WRITE,
    SFTPAttrs,
    SFTPError,
    SFTPFailure,
    SFTPName,
    SFTPOpUnsupported,
    SFTPPermissionDenied,
)

from onestack.ssh.confine import (
    DIRECTORY_MODE,
    FILE_MODE,
    DocumentRoot,
    ParentEntry,
    permission_bits,
    renameat2_noreplace,
    split_path,
)

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def sftp_operation(method: F) -> F:
    """Pass OSError and SFTPError on; log anything else and return FAILURE."""

    @functools.wraps(method)
    def wrapper(self: ConfinedSFTPServer, *args: Any) -> Any:
        self.session.touch()
        try:
            return method(self, *args)
        except (OSError, SFTPError):
            raise
        except Exception:
            logger.exception(
                "[conn=%s] SFTP %s failed", self.session.connection_id, method.__name__
            )
            raise SFTPFailure("internal error") from None

    return wrapper  # type: ignore[return-value]


class OpenFile:
    """An open file handle: a descriptor read and written at explicit offsets."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # asyncssh's sparse-ranges extension finds data with SEEK_DATA/SEEK_HOLE.
        return os.lseek(self.fd, offset, whence)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class DirectoryListing:
    """An open directory handle: the entries read when it was opened."""

    def __init__(self, names: list[SFTPName]) -> None:
        self._names: Iterator[SFTPName] = iter(names)

    def __aiter__(self) -> DirectoryListing:
        return self

    async def __anext__(self) -> SFTPName:
        try:
            return next(self._names)
        except StopIteration:
            raise StopAsyncIteration from None


class SessionLimits:
    """Limits of one session, and the activity clock for its idle timeout."""

    def __init__(self, connection_id: str, max_handles: int, touch: Callable[[], None]):
        self.connection_id = connection_id
        self.max_handles = max_handles
        self.touch = touch


class ConfinedSFTPServer(asyncssh.SFTPServer):
    """SFTP operations for one session, every path inside ``root``."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel,
        root: DocumentRoot,
        session: SessionLimits,
    ) -> None:
        super().__init__(chan)
        self.root = root
        self.session = session
        self._files: set[OpenFile] = set()
        # Directory handles live in asyncssh's table until the client closes
        # them. asyncssh has no close callback for them, so a weak set drops
        # each one when asyncssh releases it.
        self._listings: weakref.WeakSet[DirectoryListing] = weakref.WeakSet()

    # --- handles -------------------------------------------------------------

    def _check_handle_limit(self) -> None:
        if len(self._files) + len(self._listings) >= self.session.max_handles:
            logger.warning(
                "[conn=%s] open handle limit (%d) reached",
                self.session.connection_id,
                self.session.max_handles,
            )
            raise SFTPFailure(
                f"too many open handles (limit {self.session.max_handles})"
            )

    @sftp_operation
    def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> OpenFile:
        self._check_handle_limit()

        if pflags & FXF_WRITE:
            flags = os.O_RDWR if pflags & FXF_READ else os.O_WRONLY
        else:
            flags = os.O_RDONLY
        if pflags & FXF_APPEND:
            flags |= os.O_APPEND
        if pflags & FXF_TRUNC:
            flags |= os.O_TRUNC
        # O_NONBLOCK: a FIFO placed in the root must not hang the session.
        flags |= os.O_NOCTTY | os.O_NONBLOCK

        fd = self._open_file(path, flags, pflags)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise OSError(errno.EISDIR, "Is a directory")
            if not stat.S_ISREG(mode):
                raise OSError(errno.EACCES, "Permission denied: not a regular file")
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        handle = OpenFile(fd)
        self._files.add(handle)
        return handle

    def _open_file(self, path: bytes, flags: int, pflags: int) -> int:
        if not pflags & FXF_CREAT:
            return self.root.open(path, flags)
        # Create with O_EXCL so that a new file gets exactly FILE_MODE whatever
        # the client asked for; an existing file keeps its mode.
        try:
            fd = self.root.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            if pflags & FXF_EXCL:
                raise
            return self.root.open(path, flags)
        os.fchmod(fd, FILE_MODE)
        return fd

    @sftp_operation
    def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: SFTPAttrs
    ) -> None:
        raise SFTPOpUnsupported("SFTP versions 5 and 6 are not offered")

    def close(self, file_obj: object) -> None:
        assert isinstance(file_obj, OpenFile)
        self._files.discard(file_obj)
        file_obj.close()

    def exit(self) -> None:
        for handle in list(self._files):
            handle.close()
        self._files.clear()
        self.root.close()
        self.session.touch()

    @sftp_operation
    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        assert isinstance(file_obj, OpenFile)
        return os.pread(file_obj.fd, size, offset)

    @sftp_operation
    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        assert isinstance(file_obj, OpenFile)
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.pwrite(file_obj.fd, view[written:], offset + written)
        return written

    @sftp_operation
    def fstat(self, file_obj: object) -> os.stat_result:
        assert isinstance(file_obj, OpenFile)
        return os.fstat(file_obj.fd)

    @sftp_operation
    def fsetstat(self, file_obj: object, attrs: SFTPAttrs) -> None:
        assert isinstance(file_obj, OpenFile)
        self._apply_attrs(file_obj.fd, attrs)

    @sftp_operation
    def fsync(self, file_obj: object) -> None:
        assert isinstance(file_obj, OpenFile)
        os.fsync(file_obj.fd)

    @sftp_operation
    def fstatvfs(self, file_obj: object) -> os.statvfs_result:
        assert isinstance(file_obj, OpenFile)
        return os.statvfs(file_obj.fd)

    # --- attributes ----------------------------------------------------------

    @sftp_operation
    def stat(self, path: bytes) -> os.stat_result:
        fd = self.root.open(path, os.O_PATH)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    @sftp_operation
    def lstat(self, path: bytes) -> os.stat_result:
        if not split_path(path):
            return os.fstat(self.root.fd)
        with self._parent(path) as entry:
            return os.stat(entry.name, dir_fd=entry.dir_fd, follow_symlinks=False)

    @sftp_operation
    def setstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        fd = self.root.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        try:
            self._apply_attrs(fd, attrs)
        finally:
            os.close(fd)

    @sftp_operation
    def lsetstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        if stat.S_ISLNK(self.lstat(path).st_mode):
            raise SFTPOpUnsupported("attributes of a symlink itself cannot be set")
        self.setstat(path, attrs)

    def _apply_attrs(self, fd: int, attrs: SFTPAttrs) -> None:
        if attrs.uid is not None or attrs.gid is not None:
            current = os.fstat(fd)
            if (attrs.uid, attrs.gid) != (current.st_uid, current.st_gid):
                raise SFTPPermissionDenied("changing the owner is not allowed")
        if attrs.size is not None:
            os.ftruncate(fd, attrs.size)
        if attrs.permissions is not None:
            os.fchmod(fd, permission_bits(attrs.permissions))
        if attrs.atime is not None and attrs.mtime is not None:
            os.utime(fd, (attrs.atime, attrs.mtime))

    @sftp_operation
    def statvfs(self, path: bytes) -> os.statvfs_result:
        return os.statvfs(self.root.fd)

    # --- directories ---------------------------------------------------------

    @sftp_operation
    def scandir(self, path: bytes) -> DirectoryListing:  # type: ignore[override]
        # asyncssh calls this without awaiting it when a directory is opened,
        # so it resolves and reads the directory at once and fails early.
        self._check_handle_limit()
        fd = self.root.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            own = os.fstat(fd)
            names = [SFTPName(b".", attrs=SFTPAttrs.from_local(own))]
            names.append(SFTPName(b"..", attrs=SFTPAttrs.from_local(own)))
            with os.scandir(fd) as entries:
                for entry in entries:
                    attrs = SFTPAttrs.from_local(entry.stat(follow_symlinks=False))
                    names.append(SFTPName(os.fsencode(entry.name), attrs=attrs))
        finally:
            os.close(fd)
        listing = DirectoryListing(names)
        self._listings.add(listing)
        return listing

    @sftp_operation
    def mkdir(self, path: bytes, attrs: SFTPAttrs) -> None:
        with self._parent(path) as entry:
            os.mkdir(entry.name, DIRECTORY_MODE, dir_fd=entry.dir_fd)
            # Set the mode on the directory just made, not on whatever the
            # name points to by now, so open it without following links.
            fd = os.open(
                entry.name,
                os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                dir_fd=entry.dir_fd,
            )
            try:
                os.fchmod(fd, DIRECTORY_MODE)
            finally:
                os.close(fd)

    @sftp_operation
    def rmdir(self, path: bytes) -> None:
        with self._parent(path) as entry:
            os.rmdir(entry.name, dir_fd=entry.dir_fd)

    @sftp_operation
    def realpath(self, path: bytes) -> bytes:
        return self.root.realpath(path)

    # --- names ---------------------------------------------------------------

    @sftp_operation
    def remove(self, path: bytes) -> None:
        with self._parent(path) as entry:
            os.unlink(entry.name, dir_fd=entry.dir_fd)

    @sftp_operation
    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        with self._parent(oldpath) as old, self._parent(newpath) as new:
            self._check_moved_symlink(old, new)
            renameat2_noreplace(old.dir_fd, old.name, new.dir_fd, new.name)

    @sftp_operation
    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        with self._parent(oldpath) as old, self._parent(newpath) as new:
            self._check_moved_symlink(old, new)
            os.rename(old.name, new.name, src_dir_fd=old.dir_fd, dst_dir_fd=new.dir_fd)

    def _check_moved_symlink(self, old: ParentEntry, new: ParentEntry) -> None:
        """Reject moving a symlink where its relative target would lead outside.

        NOTE: only a symlink moved by itself is checked. Relative symlinks
        inside a moved directory are not, so they may end up pointing outside
        the root; SFTP never follows them there, and the http module checks
        every resolved path against the root itself.
        """
        info = os.stat(old.name, dir_fd=old.dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(old.name, dir_fd=old.dir_fd)
            self.root.check_symlink_target(new.dir_fd, os.fsencode(target))

    @sftp_operation
    def readlink(self, path: bytes) -> bytes:
        with self._parent(path) as entry:
            return os.fsencode(os.readlink(entry.name, dir_fd=entry.dir_fd))

    @sftp_operation
    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        with self._parent(newpath) as entry:
            self.root.check_symlink_target(entry.dir_fd, oldpath)
            os.symlink(oldpath, entry.name, dir_fd=entry.dir_fd)

    @sftp_operation
    def link(self, oldpath: bytes, newpath: bytes) -> None:
        with self._parent(oldpath) as old, self._parent(newpath) as new:
            self._check_moved_symlink(old, new)
            os.link(
                old.name,
                new.name,
                src_dir_fd=old.dir_fd,
                dst_dir_fd=new.dir_fd,
                follow_symlinks=False,
            )

    @contextmanager
    def _parent(self, path: bytes) -> Iterator[ParentEntry]:
        entry = self.root.open_parent(path)
        try:
            yield entry
        finally:
            os.close(entry.dir_fd)

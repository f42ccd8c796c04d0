"""Path confinement: every path resolves inside the document root, or fails."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from onestack.ssh.confine import (
    DocumentRoot,
    OutsideRootError,
    permission_bits,
    split_path,
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A root with a file, a subdirectory, and links in and out; a secret beside it."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("home")
    (root / "sub" / "page.html").write_text("page")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "in-link").symlink_to("sub/page.html")
    (root / "dir-link").symlink_to("sub")
    (root / "out-relative").symlink_to("../secret.txt")
    (root / "out-absolute").symlink_to(tmp_path / "secret.txt")
    (root / "out-dir").symlink_to(tmp_path)
    (root / "slash").symlink_to("/")
    (root / "sub" / "up-and-back").symlink_to("../sub/page.html")
    (root / "sub" / "up-and-out").symlink_to("../../secret.txt")
    return root


@pytest.fixture
def document_root(tree: Path) -> Iterator[DocumentRoot]:
    root = DocumentRoot(str(tree))
    yield root
    root.close()


def read(root: DocumentRoot, path: bytes) -> str:
    fd = root.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 100).decode()
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        (b"/", ()),
        (b"", ()),
        (b".", ()),
        (b"a/b", (b"a", b"b")),
        (b"/a//b/./c/", (b"a", b"b", b"c")),
        (b"a/../b", (b"b",)),
        (b"a/b/../..", ()),
        (b"...", (b"...",)),
    ],
)
def test_split_path(path: bytes, parts: tuple[bytes, ...]) -> None:
    assert split_path(path) == parts


@pytest.mark.parametrize(
    "path", [b"..", b"/..", b"../x", b"a/../../x", b"/a/b/../../../etc"]
)
def test_split_path_above_root(path: bytes) -> None:
    with pytest.raises(OutsideRootError):
        split_path(path)


def test_split_path_nul_byte() -> None:
    with pytest.raises(OSError):
        split_path(b"a\0b")


@pytest.mark.parametrize(
    ("path", "content"),
    [
        (b"/index.html", "home"),
        (b"index.html", "home"),
        (b"/sub/page.html", "page"),
        (b"/in-link", "page"),
        (b"/dir-link/page.html", "page"),
        (b"/sub/up-and-back", "page"),
    ],
)
def test_open_inside(document_root: DocumentRoot, path: bytes, content: str) -> None:
    assert read(document_root, path) == content


@pytest.mark.parametrize(
    "path",
    [
        b"/out-relative",
        b"/out-absolute",
        b"/out-dir/secret.txt",
        b"/slash/etc/passwd",
        b"/sub/up-and-out",
        b"/../secret.txt",
    ],
)
def test_open_outside_rejected(document_root: DocumentRoot, path: bytes) -> None:
    with pytest.raises(OutsideRootError):
        document_root.open(path, os.O_RDONLY)


def test_open_parent_of_root_rejected(document_root: DocumentRoot) -> None:
    with pytest.raises(OutsideRootError):
        document_root.open_parent(b"/")


def test_open_parent_through_link_out_rejected(document_root: DocumentRoot) -> None:
    with pytest.raises(OutsideRootError):
        document_root.open_parent(b"/out-dir/new.txt")


def test_create_through_link_out_rejected(
    document_root: DocumentRoot, tree: Path
) -> None:
    with pytest.raises(OutsideRootError):
        document_root.open(b"/out-dir/new.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    assert not (tree.parent / "new.txt").exists()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (b"/", b"/"),
        (b"sub/../index.html", b"/index.html"),
        (b"/dir-link", b"/sub"),
        (b"/in-link", b"/sub/page.html"),
        (b"/sub/not-yet.txt", b"/sub/not-yet.txt"),
        (b"/..", b"/"),
        (b"../../sub", b"/sub"),
        (b"/sub/../../..", b"/"),
    ],
)
def test_realpath(document_root: DocumentRoot, path: bytes, expected: bytes) -> None:
    assert document_root.realpath(path) == expected


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        (b"index.html", True),
        (b"sub/page.html", True),
        (b"../index.html", True),  # from sub/, lands in the root
        (b"not-yet", True),
        (b"../..", False),
        (b"../../secret.txt", False),
        (b"/", False),
        (b"/etc/passwd", False),
        (b"../out-dir", False),  # a link that is inside, but resolves outside
        (b"", False),
    ],
)
def test_symlink_target(
    document_root: DocumentRoot, target: bytes, allowed: bool
) -> None:
    entry = document_root.open_parent(b"/sub/new-link")
    try:
        if allowed:
            document_root.check_symlink_target(entry.dir_fd, target)
        else:
            with pytest.raises(OSError):
                document_root.check_symlink_target(entry.dir_fd, target)
    finally:
        os.close(entry.dir_fd)


def test_swapping_directory_for_link_never_escapes(tree: Path) -> None:
    """A directory replaced by a link out, over and over, never opens the secret.

    This is the check-then-use race: a path-string check followed by open()
    would sometimes see the directory and open through the link.
    """
    (tree / "race").mkdir()
    (tree / "race" / "secret.txt").write_text("inside")
    root = DocumentRoot(str(tree))
    stop = threading.Event()

    def swap() -> None:
        for _ in range(20_000):
            if stop.is_set():
                return
            os.rename(tree / "race", tree / "race.dir")
            os.symlink(tree.parent, tree / "race")
            os.unlink(tree / "race")
            os.rename(tree / "race.dir", tree / "race")

    swapper = threading.Thread(target=swap)
    swapper.start()
    contents = set()
    try:
        for _ in range(5000):
            try:
                contents.add(read(root, b"/race/secret.txt"))
            except OSError:
                contents.add("rejected")
    finally:
        stop.set()
        swapper.join()
        root.close()

    assert "secret" not in contents
    assert contents <= {"inside", "rejected"}


def test_permission_bits() -> None:
    assert permission_bits(0o100777) == 0o755
    assert permission_bits(0o4755) == 0o755
    assert permission_bits(0o600) == 0o600

"""Path safety: no request path leaves the document root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from onestack.web.paths import PathError, resolve_path, split_segments


@pytest.fixture
def root(tmp_path: Path) -> str:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "page.html").write_text("page")
    (root / "index.html").write_text("home")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "inside-link").symlink_to(root / "index.html")
    (root / "outside-link").symlink_to(tmp_path / "secret.txt")
    (root / "outside-dir").symlink_to(tmp_path)
    return os.path.realpath(root)


def rejected_status(root: str, raw: bytes) -> int:
    with pytest.raises(PathError) as caught:
        resolve_path(root, raw)
    return caught.value.status


def test_plain_path_resolves(root: str) -> None:
    assert resolve_path(root, b"/sub/page.html") == os.path.join(
        root, "sub", "page.html"
    )


def test_root_resolves_to_root(root: str) -> None:
    assert resolve_path(root, b"/") == root


def test_percent_encoded_name_decodes(root: str) -> None:
    assert resolve_path(root, b"/sub/p%61ge.html").endswith("/sub/page.html")


def test_repeated_slashes_collapse(root: str) -> None:
    assert resolve_path(root, b"//sub///page.html").endswith("/sub/page.html")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"/../secret.txt", 403),
        (b"/sub/../../secret.txt", 403),
        (b"/sub/..", 403),
        (b"/./index.html", 403),
        (b"/%2e%2e/secret.txt", 403),
        (b"/%2E%2E/secret.txt", 403),
        (b"/.%2e/secret.txt", 403),
        (b"/sub%2f..%2f..%2fsecret.txt", 404),
        (b"/sub%2F..%2F..%2Fsecret.txt", 404),
        (b"/..%5c..%5csecret.txt", 404),
        (b"/index.html%00.txt", 400),
        (b"/index\x00.html", 400),
        (b"/%ff%fe", 400),
        (b"relative/path", 400),
        (b"/.htpasswd", 404),
        (b"/sub/.git/config", 404),
        (b"/.env", 404),
    ],
)
def test_unsafe_paths_rejected(root: str, raw: bytes, status: int) -> None:
    assert rejected_status(root, raw) == status


def test_symlink_inside_root_allowed(root: str) -> None:
    assert resolve_path(root, b"/inside-link") == os.path.join(root, "index.html")


def test_symlink_to_outside_file_rejected(root: str) -> None:
    assert rejected_status(root, b"/outside-link") == 403


def test_symlink_to_outside_directory_rejected(root: str) -> None:
    assert rejected_status(root, b"/outside-dir/secret.txt") == 403


def test_well_known_dot_segment_allowed(root: str) -> None:
    assert resolve_path(root, b"/.well-known/security.txt").endswith(
        "/.well-known/security.txt"
    )


def test_root_prefix_sibling_rejected(tmp_path: Path) -> None:
    # "/srv/site-evil" starts with "/srv/site" but is not under it.
    (tmp_path / "site").mkdir()
    (tmp_path / "site-evil").mkdir()
    (tmp_path / "site-evil" / "x.html").write_text("x")
    (tmp_path / "site" / "link").symlink_to(tmp_path / "site-evil")
    root = os.path.realpath(tmp_path / "site")
    assert rejected_status(root, b"/link/x.html") == 403


def test_split_segments_keeps_encoded_spaces() -> None:
    assert split_segments(b"/a%20b/c") == ["a b", "c"]

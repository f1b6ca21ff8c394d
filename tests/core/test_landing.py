import os

from pipelines.core.landing import scan_landing


def test_scan_finds_digests_in_key_order_and_skips_hidden_and_linked_folders(tmp_path):
    landing, outside = tmp_path / "landing", tmp_path / "outside"
    for folder in (landing / "2024" / "03", landing / ".partial", outside):
        folder.mkdir(parents=True)
    for path in (
        landing / "b.txt",
        landing / "a.txt",
        landing / "2024" / "03" / "c.txt",
        landing / ".in-progress.txt",  # hidden: a writer's file in progress
        landing / ".partial" / "d.txt",  # in a hidden folder
        landing / "notes.md",  # not a digest
        outside / "e.txt",
    ):
        path.write_text("x" * len(path.name), encoding="utf-8")
    (landing / "linked").symlink_to(outside, target_is_directory=True)  # not entered
    (landing / "out.txt").symlink_to(outside / "e.txt")  # found, to be refused unread
    (landing / "same.txt").symlink_to("a.txt")  # a link inside: another name for a.txt
    os.mkfifo(landing / "pipe.txt")

    found, skipped = scan_landing(landing)

    assert [(f.key, f.size) for f in found] == [
        ("2024/03/c.txt", 5),
        ("a.txt", 5),
        ("b.txt", 5),
        ("out.txt", 0),  # size unknown: never followed out of the folder
        ("same.txt", 5),
    ]
    assert skipped == ["pipe.txt: not a regular file; skipped"]
    assert found[1].mtime_ns == (landing / "a.txt").stat().st_mtime_ns
